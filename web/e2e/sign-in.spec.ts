// The demo page of the local run in Chromium: the whole sign-in with the code read from
// /_dev/outbox, and each state a person can meet on the way.
import { join } from 'node:path';

import { expect, test } from '@playwright/test';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import {
  artifacts,
  codeSaid,
  codeSentTo,
  dialog,
  openSignIn,
  outbox,
  screenshot,
  seriousAccessibilityViolations,
  testNumber,
  wrongCode,
} from './helpers.js';

const base = process.env.OTP_WEB_BASE_URL ?? 'http://127.0.0.1:3001';
/** A second local run whose per-IP send limit is 1, for the rate-limited state. */
const tight = process.env.OTP_WEB_TIGHT_URL;

function subjectOf(token: string): unknown {
  const payload = token.split('.')[1] ?? '';
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown }).sub;
}

test('the whole sign-in, with the code read from the outbox', async ({ page }) => {
  const number = testNumber(1);
  const modal = await openSignIn(page);
  await expect(modal.getByRole('heading', { name: 'Sign in with your phone' })).toBeVisible();
  // The picker's default comes from the browser's locale (en-US).
  await expect(modal.getByLabel('Country')).toHaveValue('US');
  await modal.getByLabel(/Your name/).fill('Ada Lovelace');
  await modal.getByLabel('Phone number').fill(number.national);
  await screenshot(page, '01-phone');
  // The modal alone, for the README (docs/img/sign-in.png is a copy of it).
  await modal.screenshot({ path: join(artifacts, 'sign-in.png'), animations: 'disabled' });
  await modal.getByRole('button', { name: 'Send code' }).click();

  await expect(modal.getByText(`We sent a code to ${number.e164}.`)).toBeVisible();
  const codeField = modal.getByLabel('Code from the SMS');
  await expect(codeField).toBeFocused();
  await expect(codeField).toHaveAttribute('autocomplete', 'one-time-code');
  await expect(codeField).toHaveAttribute('inputmode', 'numeric');
  const code = await codeSentTo(base, number.e164);
  // The local build's developer panel lists the same SMS.
  await expect(page.locator('aside.dev-panel')).toContainText(code);
  await screenshot(page, '02-code-sent');

  await codeField.fill(code);
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(dialog(page)).toBeHidden();
  await expect(page.getByRole('heading', { name: 'Welcome, Ada Lovelace' })).toBeVisible();
  await expect(page.getByTestId('subject')).toHaveText(number.e164);
  const token = (await page.getByTestId('token').textContent()) ?? '';
  expect(subjectOf(token)).toBe(number.e164);
  // Checked as a backend would, by a library no one here wrote, with the served public
  // keys alone (a backend's job, never the browser's).
  const keys = createRemoteJWKSet(new URL('/.well-known/jwks.json', base));
  const { payload, protectedHeader } = await jwtVerify(token, keys, {
    algorithms: ['ES256'],
    issuer: 'otp-service',
    audience: 'otp-service-clients',
  });
  expect(protectedHeader.alg).toBe('ES256');
  expect(payload).toMatchObject({ sub: number.e164, phone_number: number.e164, phone_number_verified: true, amr: ['sms'] });
  await screenshot(page, '03-signed-in');
});

test('a wrong code shows the attempts left, and the right one still signs in', async ({ page }) => {
  const number = testNumber(2);
  const modal = await openSignIn(page);
  await modal.getByLabel('Phone number').fill(number.e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  const code = await codeSentTo(base, number.e164);
  const codeField = modal.getByLabel('Code from the SMS');
  await codeField.fill(wrongCode(code));
  await codeField.press('Enter');
  await expect(modal.getByRole('alert')).toHaveText('That code is not right. 4 attempts left.');
  await expect(codeField).toHaveAttribute('aria-invalid', 'true');
  await screenshot(page, '04-wrong-code');
  await codeField.fill(wrongCode(wrongCode(code)));
  await codeField.press('Enter');
  await expect(modal.getByRole('alert')).toHaveText('That code is not right. 3 attempts left.');
  await codeField.fill(code);
  await codeField.press('Enter');
  await expect(page.getByTestId('subject')).toHaveText(number.e164);
});

test('the resend button counts down from resendAfterSeconds, then sends a new code', async ({ page }) => {
  const number = testNumber(3);
  const modal = await openSignIn(page);
  await modal.getByLabel('Phone number').fill(number.e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  const first = await codeSentTo(base, number.e164);
  // This run's cooldown is 3 s (OTP_RESEND_COOLDOWN_SECONDS in scripts/test-web).
  const resend = modal.getByRole('button', { name: /^Resend code/ });
  await expect(resend).toHaveText(/^Resend code in [23] s$/);
  await expect(resend).toBeDisabled();
  await screenshot(page, '05-resend-countdown');
  await expect(resend).toHaveText(/^Resend code in 1 s$/);
  await expect(resend).toHaveText('Resend code', { timeout: 5_000 });
  await expect(resend).toBeEnabled();
  await resend.click();
  await expect(modal.getByRole('status')).toHaveText(`A new code was sent to ${number.e164}.`);
  await expect(resend).toBeDisabled();
  const second = await codeSentTo(base, number.e164, 2);
  expect((await outbox(base)).filter((message) => message.to === number.e164)).toHaveLength(2);
  await modal.getByLabel('Code from the SMS').fill(second);
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('subject')).toHaveText(number.e164);
  expect(first).toMatch(/^\d{6}$/);
});

test('the rate-limited message, with the send button waiting', async ({ page }) => {
  expect(tight, 'OTP_WEB_TIGHT_URL: the local run with tight limits (scripts/test-web starts it)').toBeTruthy();
  const modal = await openSignIn(page, `${tight ?? ''}/`);
  await modal.getByLabel('Phone number').fill(testNumber(4).e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  await expect(modal.getByText(`We sent a code to ${testNumber(4).e164}.`)).toBeVisible();
  await modal.getByRole('button', { name: 'Use another number' }).click();
  await modal.getByLabel('Phone number').fill(testNumber(5).e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  // The wait in minutes (this run's window is 900 s), and what a lock means on a new device.
  await expect(modal.getByRole('alert')).toHaveText(
    /^Too many requests\. Try again in 1[45] min\. If this number is locked after wrong codes, it stays locked on a new device until then; a device that signed in with it before can still sign in\.$/,
  );
  const wait = modal.getByRole('button', { name: /^Send code \(wait \d+ s\)$/ });
  await expect(wait).toBeDisabled();
  await screenshot(page, '06-rate-limited');
});

test('an invalid number is refused with a message on the field', async ({ page }) => {
  const modal = await openSignIn(page);
  const phone = modal.getByLabel('Phone number');
  await phone.fill('12345');
  await modal.getByRole('button', { name: 'Send code' }).click();
  await expect(modal.getByRole('alert')).toHaveText(
    'This is not a valid mobile number. Check the country and the number.',
  );
  await expect(phone).toHaveAttribute('aria-invalid', 'true');
  await expect(phone).toHaveAttribute('aria-describedby', /error/);
  await screenshot(page, '07-invalid-number');
});

test('the same sign-in by keyboard alone', async ({ page }) => {
  const number = testNumber(6);
  await page.goto('/');
  const signIn = page.getByRole('button', { name: 'Sign in' });
  // Tab from the top of the page to the sign-in button.
  for (let i = 0; i < 5 && !(await signIn.evaluate((el) => el === document.activeElement)); i += 1) {
    await page.keyboard.press('Tab');
  }
  await expect(signIn).toBeFocused();
  await page.keyboard.press('Enter');
  const modal = dialog(page);
  await expect(modal.getByLabel(/Your name/)).toBeFocused();

  // The focus stays inside the modal both ways round.
  for (let i = 0; i < 8; i += 1) {
    await page.keyboard.press('Tab');
    expect(await modal.evaluate((el) => el.contains(document.activeElement))).toBe(true);
  }
  for (let i = 0; i < 8; i += 1) {
    await page.keyboard.press('Shift+Tab');
    expect(await modal.evaluate((el) => el.contains(document.activeElement))).toBe(true);
  }
  // Escape closes it and gives the focus back; Enter opens it afresh.
  await page.keyboard.press('Escape');
  await expect(modal).toBeHidden();
  await expect(signIn).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(modal.getByLabel(/Your name/)).toBeFocused();

  await page.keyboard.type('Grace');
  await page.keyboard.press('Tab');
  await expect(modal.getByLabel('Country')).toBeFocused();
  await page.keyboard.press('Tab');
  await expect(modal.getByLabel('Phone number')).toBeFocused();
  await page.keyboard.type(number.national);
  await page.keyboard.press('Enter');
  await expect(modal.getByLabel('Code from the SMS')).toBeFocused();
  await page.keyboard.type(await codeSentTo(base, number.e164));
  await page.keyboard.press('Enter');
  await expect(page.getByRole('heading', { name: 'Welcome, Grace' })).toBeVisible();
  await expect(page.getByTestId('subject')).toHaveText(number.e164);
});

test('no serious or critical accessibility violations (axe-core) in any state', async ({ page }) => {
  await page.goto('/');
  expect(await seriousAccessibilityViolations(page)).toEqual([]);
  const modal = await openSignIn(page);
  expect(await seriousAccessibilityViolations(page)).toEqual([]);
  await modal.getByLabel('Phone number').fill('12');
  await modal.getByRole('button', { name: 'Send code' }).click();
  await expect(modal.getByRole('alert')).not.toBeEmpty();
  expect(await seriousAccessibilityViolations(page)).toEqual([]);
  const number = testNumber(7);
  await modal.getByLabel('Phone number').fill(number.e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  const code = await codeSentTo(base, number.e164);
  await modal.getByLabel('Code from the SMS').fill(wrongCode(code));
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(modal.getByRole('alert')).not.toBeEmpty();
  expect(await seriousAccessibilityViolations(page)).toEqual([]);
  await modal.getByLabel('Code from the SMS').fill(code);
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('subject')).toHaveText(number.e164);
  expect(await seriousAccessibilityViolations(page)).toEqual([]);
});

test('the texts follow the language: French', async ({ page }) => {
  const modal = await openSignIn(page, '/?lang=fr-FR');
  await expect(modal.getByRole('heading', { name: 'Connectez-vous avec votre téléphone' })).toBeVisible();
  await expect(modal.getByLabel('Pays')).toHaveValue('FR');
  await expect(modal).toHaveAttribute('lang', 'fr');
  await screenshot(page, '08-french');
});

test('"Call me instead" on the code step calls the number, and the code it says signs in', async ({ page }) => {
  const number = testNumber(12);
  const modal = await openSignIn(page);
  await modal.getByLabel('Phone number').fill(number.e164);
  await modal.getByRole('button', { name: 'Send code' }).click();
  await codeSentTo(base, number.e164);
  const call = modal.getByRole('button', { name: 'Call me instead' });
  await expect(modal.getByRole('button', { name: 'Send by WhatsApp' })).toBeVisible();
  await expect(call).toBeEnabled({ timeout: 5_000 });
  await call.click();
  await expect(modal.getByRole('status')).toHaveText(`We are calling ${number.e164}: answer, and listen for the code.`);
  await screenshot(page, '09-call-me-instead');
  let twiml = '';
  await expect
    .poll(async () => {
      const newest = (await outbox(base)).find((message) => message.to === number.e164);
      twiml = newest?.channel === 'voice' ? newest.body : '';
      return twiml;
    })
    .toContain('<Response>');
  const code = codeSaid(twiml);
  expect(code).toMatch(/^\d{6}$/);
  await expect(modal.getByRole('button', { name: 'Text me instead' })).toBeVisible();
  // After a call, the texts speak of the call: the first line, the code field, the status.
  await expect(modal.getByText(`A call to ${number.e164} will say the code.`)).toBeVisible();
  const codeField = modal.getByLabel('Code from the call');
  await expect(codeField).toBeFocused();
  for (const text of [
    await modal.locator('form > p').first().innerText(),
    await modal.locator('.otp-field').innerText(),
    await modal.getByRole('status').innerText(),
  ]) {
    expect(text).not.toMatch(/SMS/);
  }
  // A code typed wrong is told to be typed as the call said it.
  await codeField.fill('12');
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(modal.getByRole('alert')).toHaveText('Type the code exactly as the call said it: digits only.');
  await codeField.fill(code);
  await modal.getByRole('button', { name: 'Verify' }).click();
  await expect(page.getByTestId('subject')).toHaveText(number.e164);
});
