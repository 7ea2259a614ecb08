import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// `--mode localrun` is the build that scripts/dev serves (with the developer panel);
// any other mode is a production build, which has no trace of it.
export default defineConfig({
  plugins: [react()],
  build: { target: 'es2022', sourcemap: false },
  server: {
    port: 5173,
    // `vite dev`: the API and the outbox of a local run on its default port.
    proxy: { '/api': 'http://127.0.0.1:3001', '/_dev': 'http://127.0.0.1:3001' },
  },
});
