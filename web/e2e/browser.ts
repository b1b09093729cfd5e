/**
 * Browser-test plumbing: Debian's Chromium driven by playwright-core (never a downloaded
 * browser), and a tiny static server for web/dist so replay-mode tests need neither root nor the
 * service. Screenshots go to test-artifacts/ (gitignored).
 */
import { createServer, type Server } from 'node:http';
import { readFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join, normalize, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { labDown, labUp, type Lab } from '../../server/lab/lab.js';
import { startService, type RunningService } from '../../server/service/index.js';

export const CHROMIUM = process.env.HOPTRACE_CHROMIUM ?? '/usr/bin/chromium';
export const WEB_DIST = resolve(new URL('../dist', import.meta.url).pathname);
export const ARTIFACTS = resolve(new URL('../../test-artifacts', import.meta.url).pathname);

/** Why browser tests cannot run here, or null when they can. */
export function browserMissing(): string | null {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (npm run setup installs Debian's chromium)`;
  return null;
}

export interface BuiltDashboard {
  readonly dir: string;
  remove(): Promise<void>;
}

/**
 * Builds the dashboard from the current sources into a temporary directory, so a test checks
 * what is in the tree (not a stale web/dist) and never disturbs a web/dist someone is serving.
 */
export async function buildDashboard(): Promise<BuiltDashboard> {
  const dir = await mkdtemp(join(tmpdir(), 'hoptrace-web-'));
  const { build } = await import('vite');
  await build({
    configFile: resolve(new URL('../vite.config.ts', import.meta.url).pathname),
    build: { outDir: dir, emptyOutDir: true, sourcemap: false },
    logLevel: 'warn',
  });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.map': 'application/json', '.svg': 'image/svg+xml', '.hoptrace': 'application/octet-stream', '.json': 'application/json',
};

export interface StaticServer {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves `dir` on 127.0.0.1 (port 0). /api/* answers 503, as when no service is behind the page. */
export async function serveStatic(dir: string = WEB_DIST): Promise<StaticServer> {
  const root = resolve(dir);
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (path.startsWith('/api/') || path.startsWith('/socket.io')) {
      res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'unavailable', message: 'no service here' } }));
      return;
    }
    const file = normalize(join(root, path === '/' ? 'index.html' : path));
    if (!file.startsWith(root)) {
      res.writeHead(403).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body),
      () => res.writeHead(404).end('not found'),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Collects page errors and console errors, so a test can assert the page stayed clean. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  return errors;
}

/** A lab of its own, the dashboard built from the tree, the service on port 0 serving it, and Chromium. */
export interface LiveDashboard {
  readonly lab: Lab;
  readonly service: RunningService;
  readonly browser: Browser;
  close(): Promise<void>;
}

/** Starts a LiveDashboard (root: the lab and the service's bpftrace); close() takes it all down. */
export async function startLiveDashboard(lab: Lab): Promise<LiveDashboard> {
  await labUp(lab);
  let built: BuiltDashboard | undefined;
  let service: RunningService | undefined;
  let browser: Browser;
  // A recordings library of its own, as `serve` always has one (the page lists it, e.g. in the
  // latency view's A/B pickers); without it the routes answer 503.
  const dataDir = await mkdtemp(join(tmpdir(), 'hoptrace-e2e-library-'));
  try {
    built = await buildDashboard();
    service = await startService({ port: 0, webDist: built.dir, dataDir, log: () => undefined });
    browser = await launchBrowser();
  } catch (err) {
    // Whatever started is taken down: a failed start leaves no namespaces or bpftrace behind.
    await service?.close();
    await built?.remove();
    await labDown(lab);
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
  const [b, s] = [built, service];
  return {
    lab, service: s, browser,
    close: async () => {
      await browser.close();
      await s.close();
      await b.remove();
      await labDown(lab);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
