/**
 * Serves the dashboard's production build (web/dist) at `/`, with index.html for any other
 * non-API GET so the dashboard's client-side routes survive a reload. Absent build: a short JSON
 * hint instead, so `serve` is still useful without `npm run build`.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { type Router } from 'express';

export function webRouter(dist: string | null): Router {
  const router = express.Router();
  const index = dist === null ? null : join(dist, 'index.html');
  if (dist !== null && index !== null && existsSync(index)) {
    // Hashed asset names make long caching safe; index.html itself must not be cached.
    router.use(express.static(dist, { index: false, maxAge: '1h', fallthrough: true, dotfiles: 'ignore' }));
    router.use((req, res, next) => {
      if ((req.method !== 'GET' && req.method !== 'HEAD') || req.path.startsWith('/api/') || req.path === '/api') {
        next();
        return;
      }
      res.setHeader('Cache-Control', 'no-cache');
      res.sendFile(index);
    });
  } else {
    router.get('/', (_req, res) => {
      res.json({ service: 'hoptrace', dashboard: 'not built (web/dist is missing); the API is under /api' });
    });
  }
  return router;
}
