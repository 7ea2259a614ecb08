// What the browser tests share: the outbox of a local run, test numbers, screenshots, axe.
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { expect, type Locator, type Page } from '@playwright/test';

const here = dirname(fileURLToPath(import.meta.url));
/** Screenshots of each state, kept as test artifacts (git-ignored). */
export const artifacts = process.env.OTP_WEB_ARTIFACTS ?? join(here, '..', 'artifacts');

interface OutboxMessage {
  to: string;
  channel: 'sms' | 'whatsapp' | 'voice';
  /** The SMS text, the call's TwiML or the WhatsApp template's text. */
  body: string;
  sentAt: string;
}

const englishDigits = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** The code an English call's TwiML says, digit word by digit word. */
export function codeSaid(twiml: string): string {
  const said = /<Say voice="Polly\.[A-Za-z]+" language="en-[A-Z]{2}">[^:<]*: ([^<]*)\.<\/Say>/.exec(twiml)?.[1] ?? '';
  return said
    .split(', ')
    .map((word) => String(englishDigits.indexOf(word)))
    .join('');
}

/** The SMS that the local run at `base` sent, newest first. */
export async function outbox(base: string): Promise<OutboxMessage[]> {
  const response = await fetch(new URL('/_dev/outbox', base));
  expect(response.status).toBe(200);
  return (await response.json()) as OutboxMessage[];
}

/** The code of the newest SMS to `to`, once there are at least `count` of them. */
export async function codeSentTo(base: string, to: string, count = 1): Promise<string> {
  let code = '';
  await expect
    .poll(async () => {
      const messages = (await outbox(base)).filter((message) => message.to === to);
      const match = messages.length >= count ? /\b(\d{6})\b/.exec(messages[0]?.body ?? '') : null;
      code = match?.[1] ?? '';
      return code;
    })
    .toMatch(/^\d{6}$/);
  return code;
}

/** A code that is surely not `code`. */
export function wrongCode(code: string): string {
  return code
    .split('')
    .map((digit) => String((Number(digit) + 1) % 10))
    .join('');
}

/** A US number for one test (+1 415 555 01nn); each test uses its own, so no limit is shared. */
export function testNumber(n: number): { national: string; e164: string } {
  const line = `01${String(n).padStart(2, '0')}`;
  return { national: `(415) 555-${line}`, e164: `+1415555${line}` };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, `${name}.png`), animations: 'disabled' });
}

export function dialog(page: Page): Locator {
  return page.getByRole('dialog');
}

export async function openSignIn(page: Page, path = '/'): Promise<Locator> {
  await page.goto(path);
  await page.getByRole('button', { name: 'Sign in' }).click();
  const modal = dialog(page);
  await expect(modal).toBeVisible();
  return modal;
}

// Evaluated through the DevTools protocol: the page's Content-Security-Policy (rightly) refuses
// an injected <script>.
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/** axe-core's WCAG 2.x A/AA checks on the page as it is; the serious and critical findings. */
export async function seriousAccessibilityViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const outcome = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: object) => Promise<{ violations: AxeViolation[]; passes: unknown[] }> } }).axe;
    const result = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } });
    return result;
  });
  // A run that checked nothing would find nothing: make sure it looked at the page.
  expect(outcome.passes.length).toBeGreaterThan(10);
  return outcome.violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical');
}
