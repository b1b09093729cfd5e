// Builds the dashboard into web/dist, which `hoptrace serve` serves at `/`.
// `npm run dev:web` serves it with hot reload; set HOPTRACE_URL to proxy /api and /socket.io to a
// running service (default http://127.0.0.1:7070), or open `/?replay=demo` to work without one.
import { defineConfig } from 'vite';
import vue from '@vitejs/plugin-vue';
import { fileURLToPath } from 'node:url';

const service = process.env.HOPTRACE_URL ?? 'http://127.0.0.1:7070';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  // Relative asset URLs: the build works at `/` and behind a path prefix alike.
  base: './',
  plugins: [vue()],
  worker: { format: 'es' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 2048,
  },
  server: {
    proxy: {
      // The service accepts only its own origin, so the proxy presents the service's origin.
      '/api': { target: service, changeOrigin: true, headers: { origin: service } },
      '/socket.io': { target: service, changeOrigin: true, ws: true, headers: { origin: service } },
    },
  },
});
