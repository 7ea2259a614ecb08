// Browser tests of the demo page served by the local run, in Debian's Chromium
// (scripts/test-web starts the service instances and passes their URLs).
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  outputDir: '../test-results',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: true,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [['list']],
  use: {
    baseURL: process.env.OTP_WEB_BASE_URL ?? 'http://127.0.0.1:3001',
    locale: 'en-US',
    viewport: { width: 900, height: 760 },
    trace: 'off',
    screenshot: 'off',
    launchOptions: {
      // Playwright's own browser download does not work on these machines: Debian's package.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      // Playwright adds --headless and a fresh, empty --user-data-dir of its own to each launch.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
