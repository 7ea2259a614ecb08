// Where a frontend keeps the device tokens of its approvals, one per number (API.md,
// "Genuine users first"): an interface the app may implement, and a localStorage default.
// Sign-in never depends on it: a store that fails only means a request without a token.
import { isDeviceToken } from './client.js';

/**
 * The device tokens of this device, by E.164 number. Either method may return a promise
 * (an app may keep them in IndexedDB, a native bridge, its own backend).
 */
export interface DeviceTokenStore {
  /** The token kept for `number`, if there is one that has not expired. */
  get(number: string): string | null | undefined | Promise<string | null | undefined>;
  /** Keeps `token` for `number` until `expiresAt` (RFC 3339), replacing any older one. */
  set(number: string, token: string, expiresAt: string): void | Promise<void>;
}

export interface LocalStorageDeviceTokenOptions {
  /** The storage to use (default: the page's `localStorage`, looked up at each call). */
  storage?: Pick<Storage, 'getItem' | 'setItem' | 'removeItem'> | undefined;
  /** The key's prefix; the E.164 number follows it (default `otp-service.device-token:`). */
  prefix?: string | undefined;
  /** The current time in milliseconds (tests). */
  now?: (() => number) | undefined;
}

interface Kept {
  token: string;
  expiresAt: string;
}

/**
 * The default store: one localStorage entry per number, holding the token and its expiry.
 * An expired or unreadable entry is dropped when read. Every storage failure (localStorage
 * disabled or refused, a full quota, a private mode that throws) is swallowed: the token
 * is then simply not kept, and sign-in goes on without it.
 */
export function localStorageDeviceTokens(options: LocalStorageDeviceTokenOptions = {}): DeviceTokenStore {
  const prefix = options.prefix ?? 'otp-service.device-token:';
  const now = options.now ?? Date.now;
  // Reading `window.localStorage` itself throws where storage is disabled: looked up in the try.
  const storage = () => options.storage ?? globalThis.localStorage;

  return {
    get(number) {
      try {
        const store = storage();
        const raw = store.getItem(prefix + number);
        if (raw === null) return undefined;
        const kept = parseKept(raw);
        if (kept && Date.parse(kept.expiresAt) > now()) return kept.token;
        store.removeItem(prefix + number);
      } catch {
        // no storage: no token
      }
      return undefined;
    },
    set(number, token, expiresAt) {
      try {
        const store = storage();
        if (!isDeviceToken(token) || !(Date.parse(expiresAt) > now())) {
          store.removeItem(prefix + number);
          return;
        }
        const kept: Kept = { token, expiresAt };
        store.setItem(prefix + number, JSON.stringify(kept));
      } catch {
        // no storage, or full: the token is not kept
      }
    },
  };
}

function parseKept(raw: string): Kept | undefined {
  try {
    const value: unknown = JSON.parse(raw);
    if (typeof value !== 'object' || value === null) return undefined;
    const { token, expiresAt } = value as Record<string, unknown>;
    return isDeviceToken(token) && typeof expiresAt === 'string' ? { token, expiresAt } : undefined;
  } catch {
    return undefined;
  }
}

/** `store.get(number)`, with any failure (thrown or rejected) or odd value read as none. */
export async function readDeviceToken(store: DeviceTokenStore | null | undefined, number: string): Promise<string | undefined> {
  if (!store) return undefined;
  try {
    const token = await store.get(number);
    return isDeviceToken(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

/** `store.set(...)`, with any failure (thrown or rejected) swallowed. */
export async function keepDeviceToken(
  store: DeviceTokenStore | null | undefined,
  number: string,
  token: string,
  expiresAt: string,
): Promise<void> {
  if (!store) return;
  try {
    await store.set(number, token, expiresAt);
  } catch {
    // an app's store that failed: the next sign-in goes without a token
  }
}
