// The device token store: the localStorage default (per number, expiry, storage that
// fails) and the helpers that keep an app's own store from breaking a sign-in.
import { describe, expect, it } from 'vitest';

import { keepDeviceToken, localStorageDeviceTokens, readDeviceToken, type DeviceTokenStore } from '../src/index.js';

/** A Storage over a Map, as the browser's localStorage behaves. */
class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, value);
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** localStorage where the browser refuses it (disabled cookies and site data, a full quota). */
const refusing = {
  getItem(): string | null {
    throw new DOMException('The operation is insecure.', 'SecurityError');
  },
  setItem(): void {
    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
  },
  removeItem(): void {
    throw new DOMException('The operation is insecure.', 'SecurityError');
  },
};

const at = (iso: string) => () => Date.parse(iso);

describe('localStorageDeviceTokens', () => {
  it('keeps one token per E.164 number, under its own key', async () => {
    const storage = new MemoryStorage();
    const store = localStorageDeviceTokens({ storage, now: at('2026-12-01T00:00:00Z') });
    await store.set('+14155550123', 'dt.first', '2027-03-01T00:00:00Z');
    await store.set('+447911123456', 'dt.second', '2027-03-01T00:00:00Z');
    expect(await store.get('+14155550123')).toBe('dt.first');
    expect(await store.get('+447911123456')).toBe('dt.second');
    expect(await store.get('+14155550199')).toBeUndefined();
    expect([...storage.items.keys()].sort()).toEqual([
      'otp-service.device-token:+14155550123',
      'otp-service.device-token:+447911123456',
    ]);
    // A newer approval replaces the number's token.
    await store.set('+14155550123', 'dt.newer', '2027-04-01T00:00:00Z');
    expect(await store.get('+14155550123')).toBe('dt.newer');
  });

  it('drops an expired token when read, and never keeps one that has expired already', async () => {
    const storage = new MemoryStorage();
    let now = Date.parse('2026-12-01T00:00:00Z');
    const store = localStorageDeviceTokens({ storage, now: () => now });
    await store.set('+14155550123', 'dt.soon-gone', '2026-12-01T00:00:10Z');
    expect(await store.get('+14155550123')).toBe('dt.soon-gone');
    now += 10_000;
    expect(await store.get('+14155550123')).toBeUndefined();
    expect(storage.items.size).toBe(0);
    await store.set('+14155550123', 'dt.late', '2026-11-30T00:00:00Z');
    await store.set('+14155550124', 'dt.no-date', 'tomorrow');
    expect(storage.items.size).toBe(0);
  });

  it('drops an entry it cannot read, and refuses a token out of the contract bounds', async () => {
    const storage = new MemoryStorage();
    const store = localStorageDeviceTokens({ storage, now: at('2026-12-01T00:00:00Z') });
    for (const raw of ['not json', 'null', '{"token":7,"expiresAt":"2027-01-01T00:00:00Z"}', '{"token":"dt.x"}']) {
      storage.setItem('otp-service.device-token:+14155550123', raw);
      expect(await store.get('+14155550123'), raw).toBeUndefined();
      expect(storage.items.size, raw).toBe(0);
    }
    await store.set('+14155550123', 'x'.repeat(513), '2027-01-01T00:00:00Z');
    await store.set('+14155550123', '', '2027-01-01T00:00:00Z');
    expect(storage.items.size).toBe(0);
  });

  it('a storage that throws on every call (localStorage disabled) reads as none and keeps nothing, without throwing', () => {
    const store = localStorageDeviceTokens({ storage: refusing });
    expect(() => store.set('+14155550123', 'dt.x', '2999-01-01T00:00:00Z')).not.toThrow();
    expect(store.get('+14155550123')).toBeUndefined();
  });

  it('uses the page localStorage by default, looked up at each call, and survives its absence', async () => {
    const global = globalThis as { localStorage?: unknown };
    const saved = global.localStorage;
    try {
      // Node has no localStorage: the default store is then empty, never an error.
      delete global.localStorage;
      const store = localStorageDeviceTokens();
      expect(store.get('+14155550123')).toBeUndefined();
      expect(() => store.set('+14155550123', 'dt.x', '2999-01-01T00:00:00Z')).not.toThrow();
      // Once there is one, the same store uses it.
      const storage = new MemoryStorage();
      global.localStorage = storage;
      await store.set('+14155550123', 'dt.page', '2999-01-01T00:00:00Z');
      expect(storage.getItem('otp-service.device-token:+14155550123')).toContain('dt.page');
      expect(await store.get('+14155550123')).toBe('dt.page');
    } finally {
      if (saved === undefined) delete global.localStorage;
      else global.localStorage = saved;
    }
  });
});

describe('readDeviceToken and keepDeviceToken', () => {
  const throwing: DeviceTokenStore = {
    get() {
      throw new Error('broken store');
    },
    set() {
      throw new Error('broken store');
    },
  };
  const rejecting: DeviceTokenStore = {
    get: () => Promise.reject(new Error('offline')),
    set: () => Promise.reject(new Error('offline')),
  };

  it('read an app store that throws or rejects as none, and swallow its failures to keep', async () => {
    for (const store of [throwing, rejecting]) {
      await expect(readDeviceToken(store, '+14155550123')).resolves.toBeUndefined();
      await expect(keepDeviceToken(store, '+14155550123', 'dt.x', '2999-01-01T00:00:00Z')).resolves.toBeUndefined();
    }
    await expect(readDeviceToken(null, '+14155550123')).resolves.toBeUndefined();
  });

  it('await an async store, and read a value that is no token as none', async () => {
    const kept = new Map<string, unknown>();
    const store: DeviceTokenStore = {
      get: async (number) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        return kept.get(number) as string | undefined;
      },
      set: async (number, token) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        kept.set(number, token);
      },
    };
    await keepDeviceToken(store, '+14155550123', 'dt.async', '2999-01-01T00:00:00Z');
    await expect(readDeviceToken(store, '+14155550123')).resolves.toBe('dt.async');
    kept.set('+14155550124', 12345);
    await expect(readDeviceToken(store, '+14155550124')).resolves.toBeUndefined();
  });
});
