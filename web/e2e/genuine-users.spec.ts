// Issue 18 in the browser: the device token of an approval kept for the number and sent with
// its next send and verify; the bot challenge widget on `captcha_required`, and a fresh token
// for every send, resends included (against a local run with a challenge on every send).
import { expect, test, type Page, type Request } from '@playwright/test';

import { codeSentTo, dialog, openSignIn, screenshot, seriousAccessibilityViolations, testNumber } from './helpers.js';

const base = process.env.OTP_WEB_BASE_URL ?? 'http://127.0.0.1:3001';
/** A local run with OTP_CAPTCHA=turnstile (a challenge on every send), verified by dev/fake-captcha. */
const challengeRun = process.env.OTP_WEB_CHALLENGE_URL;
const fakeCaptcha = process.env.OTP_WEB_FAKE_CAPTCHA_URL;
/** A local run with OTP_CAPTCHA_WHEN=under_attack and a guard that trips on one unapproved send. */
const underAttackRun = process.env.OTP_WEB_UNDER_ATTACK_URL;

interface Sent {
  path: string;
  body: Record<string, unknown>;
}

/** Every send and verify the page makes, with its JSON body, in order. */
function recordCalls(page: Page): Sent[] {
  const calls: Sent[] = [];
  page.on('request', (request: Request) => {
    const path = new URL(request.url()).pathname;
    if (request.method() === 'POST' && (path === '/api/send-otp' || path === '/api/verify-otp')) {
      calls.push({ path, body: request.postDataJSON() as Record<string, unknown> });
    }
  });
  return calls;
}

async function signIn(page: Page, national: string, e164: string, run: string, count: number): Promise<void> {
  const modal = await openSignIn(page, `${run}/`);
  await modal.getByLabel('Phone number').fill(national);
  await modal.getByRole('button', { name: 'Send code' }).click();
  const code = await codeSentTo(run, e164, count);
  await modal.getByLabel('Code from the SMS').fill(code);
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('subject')).toHaveText(e164);
}

test('the device token of an approval is kept for the number, and its next send and verify carry it', async ({ page }) => {
  const number = testNumber(21);
  // The device token the server's approval answers (the last one seen).
  let answered: unknown;
  page.on('response', async (response) => {
    if (new URL(response.url()).pathname === '/api/verify-otp' && response.status() === 200) {
      answered = ((await response.json()) as Record<string, unknown>).deviceToken;
    }
  });
  const calls = recordCalls(page);

  await signIn(page, number.national, number.e164, base, 1);
  await expect.poll(() => typeof answered).toBe('string');
  const kept = await page.evaluate((key) => localStorage.getItem(key), `otp-service.device-token:${number.e164}`);
  expect(JSON.parse(kept ?? '{}')).toMatchObject({ token: answered });
  // This device had no token for the number yet.
  expect(calls.map((call) => [call.path, call.body.deviceToken])).toEqual([
    ['/api/send-otp', undefined],
    ['/api/verify-otp', undefined],
  ]);

  // Signed out and back in: the same number, typed in another form (past the run's 3 s resend cooldown).
  const first = answered;
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForTimeout(3_000);
  await signIn(page, number.e164, number.e164, base, 2);
  expect(calls.slice(2).map((call) => [call.path, call.body.deviceToken])).toEqual([
    ['/api/send-otp', first],
    ['/api/verify-otp', first],
  ]);
  // The newer approval's token (renewed by the server: a later expiry) replaces it.
  await expect.poll(() => answered).not.toBe(first);
  const newer = await page.evaluate((key) => localStorage.getItem(key), `otp-service.device-token:${number.e164}`);
  expect(JSON.parse(newer ?? '{}')).toMatchObject({ token: answered });

  // Another number gets none of it.
  const other = testNumber(22);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await signIn(page, other.e164, other.e164, base, 1);
  expect(calls.slice(4).map((call) => call.body.deviceToken)).toEqual([undefined, undefined]);
});

test('sign-in works where localStorage is refused, without a device token', async ({ page }) => {
  const number = testNumber(23);
  // As a browser with site data blocked: every access to localStorage throws.
  await page.addInitScript(() => {
    Object.defineProperty(window, 'localStorage', {
      configurable: true,
      get() {
        throw new DOMException('The operation is insecure.', 'SecurityError');
      },
    });
  });
  const calls = recordCalls(page);
  await signIn(page, number.e164, number.e164, base, 1);
  expect(calls.map((call) => call.body.deviceToken)).toEqual([undefined, undefined]);
});

test.describe('with a bot challenge on every send (OTP_CAPTCHA)', () => {
  test.beforeEach(() => {
    expect(challengeRun, 'OTP_WEB_CHALLENGE_URL: the local run with a challenge (scripts/test-web starts it)').toBeTruthy();
    expect(fakeCaptcha, 'OTP_WEB_FAKE_CAPTCHA_URL: dev/fake-captcha (scripts/test-web starts it)').toBeTruthy();
  });

  /** The verdicts of the fake siteverify for these tokens, in order. */
  async function verdicts(tokens: unknown[]): Promise<unknown[]> {
    const response = await fetch(new URL('/_fake/calls', fakeCaptcha));
    const calls = (await response.json()) as { response?: string; success?: boolean; error_codes: string[] }[];
    return tokens.map((token) => {
      const call = calls.find((seen) => seen.response === token);
      return call ? (call.success ? 'success' : call.error_codes.join(',')) : 'not verified';
    });
  }

  test('the widget on both steps: a send without it is asked for it and goes once solved, and each resend gets a fresh token', async ({ page }) => {
    const run = challengeRun ?? '';
    const number = testNumber(31);
    const calls = recordCalls(page);
    const modal = await openSignIn(page, `${run}/?challenge=fake`);
    const check = modal.getByRole('group', { name: 'Security check' });
    await expect(check).toBeVisible();
    await modal.getByLabel('Phone number').fill(number.e164);
    await modal.getByRole('button', { name: 'Send code' }).click();
    await expect(modal.getByRole('alert')).toHaveText('Please complete the security check first.');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    // Solving it sends again by itself.
    await check.getByRole('button', { name: 'I am human (fake check)' }).click();
    await expect(modal.getByText(`We sent a code to ${number.e164}.`)).toBeVisible();
    await codeSentTo(run, number.e164, 1);

    // The code step has a widget of its own, for a token the resend has not spent yet.
    await expect(check).toBeVisible();
    await screenshot(page, '10-challenge-on-resend');
    expect(await seriousAccessibilityViolations(page)).toEqual([]);
    const resend = modal.getByRole('button', { name: 'Resend code' });
    for (let round = 2; round <= 3; round += 1) {
      await check.getByRole('button', { name: 'I am human (fake check)' }).click();
      await expect(resend).toBeEnabled({ timeout: 5_000 });
      await resend.click();
      await expect(modal.getByRole('status')).toHaveText(`A new code was sent to ${number.e164}.`);
    }
    const code = await codeSentTo(run, number.e164, 3);
    await modal.getByLabel('Code from the SMS').fill(code);
    await modal.getByRole('button', { name: 'Verify' }).click();
    await expect(page.getByTestId('subject')).toHaveText(number.e164);

    const tokens = calls.filter((call) => call.path === '/api/send-otp').map((call) => call.body.captchaToken);
    expect(tokens[0]).toBeUndefined();
    const carried = tokens.slice(1);
    expect(carried).toHaveLength(3);
    expect(new Set(carried).size).toBe(3);
    expect(await verdicts(carried)).toEqual(['success', 'success', 'success']);
  });

  test('challengeWhen under_attack: no widget until the API asks, then it appears on either step and the send goes again', async ({ page }) => {
    const run = challengeRun ?? '';
    const number = testNumber(32);
    const calls = recordCalls(page);
    const modal = await openSignIn(page, `${run}/?challenge=fake&challengeWhen=under_attack`);
    const check = modal.getByRole('group', { name: 'Security check' });
    await expect(modal.getByLabel('Phone number')).toBeVisible();
    await expect(check).toHaveCount(0);
    await modal.getByLabel('Phone number').fill(number.national);
    await modal.getByRole('button', { name: 'Send code' }).click();
    await expect(modal.getByRole('alert')).toHaveText('Please complete the security check first.');
    await expect(check).toBeVisible();
    await check.getByRole('button', { name: 'I am human (fake check)' }).click();
    await expect(modal.getByText(`We sent a code to ${number.e164}.`)).toBeVisible();
    await expect(check).toHaveCount(0);

    // This run asks on every send: the resend is asked too, and the widget comes on the code step.
    const resend = modal.getByRole('button', { name: 'Resend code' });
    await expect(resend).toBeEnabled({ timeout: 5_000 });
    await resend.click();
    await expect(modal.getByRole('alert')).toHaveText('Please complete the security check first.');
    await check.getByRole('button', { name: 'I am human (fake check)' }).click();
    await expect(modal.getByRole('status')).toHaveText(`A new code was sent to ${number.e164}.`);
    await expect(check).toHaveCount(0);
    const code = await codeSentTo(run, number.e164, 2);
    await modal.getByLabel('Code from the SMS').fill(code);
    await modal.getByRole('button', { name: 'Verify' }).click();
    await expect(dialog(page)).toBeHidden();

    const tokens = calls.filter((call) => call.path === '/api/send-otp').map((call) => call.body.captchaToken);
    expect(tokens).toHaveLength(4);
    expect([tokens[0], tokens[2]]).toEqual([undefined, undefined]);
    expect(tokens[1]).not.toBe(tokens[3]);
    expect(await verdicts([tokens[1], tokens[3]])).toEqual(['success', 'success']);
  });
});

test('against a server that asks only under attack: a new number of a paused prefix is asked, a known one is not', async ({ page }) => {
  expect(underAttackRun, 'OTP_WEB_UNDER_ATTACK_URL: the local run with OTP_CAPTCHA_WHEN=under_attack').toBeTruthy();
  const run = underAttackRun ?? '';
  // A send nobody verifies: the prefix +1 415 trips this run's guard at its next new number.
  const stray = testNumber(41);
  const sent = await fetch(`${run}/api/send-otp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ phone: stray.e164 }),
  });
  expect(sent.status).toBe(202);

  const number = testNumber(42);
  const calls = recordCalls(page);
  const modal = await openSignIn(page, `${run}/?challenge=fake&challengeWhen=under_attack`);
  const check = modal.getByRole('group', { name: 'Security check' });
  await expect(check).toHaveCount(0);
  await modal.getByLabel('Phone number').fill(number.e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  await expect(modal.getByRole('alert')).toHaveText('Please complete the security check first.');
  await check.getByRole('button', { name: 'I am human (fake check)' }).click();
  await expect(modal.getByText(`We sent a code to ${number.e164}.`)).toBeVisible();
  const code = await codeSentTo(run, number.e164, 1);
  await modal.getByLabel('Code from the SMS').fill(code);
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('subject')).toHaveText(number.e164);

  // Known now, and with its device token: the paused prefix asks it nothing.
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForTimeout(1_100);
  await signIn(page, number.e164, number.e164, run, 2);
  const sends = calls.filter((call) => call.path === '/api/send-otp');
  expect(sends.map((call) => call.body.captchaToken === undefined)).toEqual([true, false, true]);
  expect(typeof sends[2]?.body.deviceToken).toBe('string');
});
