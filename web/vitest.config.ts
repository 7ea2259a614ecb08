import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'client', include: ['client/test/**/*.test.ts'], environment: 'node' } },
      { test: { name: 'react', include: ['react/test/**/*.test.tsx'], environment: 'jsdom', testTimeout: 30_000, setupFiles: ['react/test/setup.ts'] } },
    ],
  },
});
