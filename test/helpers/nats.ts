/**
 * A real nats-server (Debian's, installed by `npm run setup`) with JetStream, for the many-node
 * tests: a free port picked by the server itself (-p -1: tests run in parallel, never fixed
 * ports), loopback only, its store in a temporary folder removed on stop().
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const hasNatsServer = spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
export const NEEDS_NATS = 'needs nats-server (Debian package nats-server; `npm run setup` installs it)';

export interface NatsServer {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** Everything the server logged so far. */
  log(): string;
  /** Stops the server and starts it again on the same port with the same store (a restart), after `downMs` (an outage). */
  restart(downMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export interface NatsServerOptions {
  /** Extra server configuration (nats-server's config language), e.g. an authorization block. */
  readonly config?: string;
  /** Largest message the server accepts (default the server's, 1 MiB). */
  readonly maxPayload?: number;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServer> {
  const dir = mkdtempSync(join(tmpdir(), 'h6h-nats-'));
  const storeDir = join(dir, 'js');
  let server = await launch(dir, storeDir, -1, opts);
  const stopProc = async (): Promise<void> => {
    const proc = server.proc;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      await exited;
    }
  };
  const port = server.port;
  let earlier = '';
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    log: () => earlier + server.out(),
    restart: async (downMs = 0) => {
      await stopProc();
      if (downMs > 0) await new Promise((r) => setTimeout(r, downMs));
      earlier += server.out();
      server = await launch(dir, storeDir, port, opts);
    },
    stop: async () => {
      await stopProc();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function launch(dir: string, storeDir: string, wantPort: number, opts: NatsServerOptions): Promise<{ proc: ChildProcess; port: number; out(): string }> {
  const conf = join(dir, 'nats.conf');
  writeFileSync(conf, [
    'host: 127.0.0.1',
    `port: ${wantPort}`,
    `jetstream { store_dir: "${storeDir}" }`,
    ...(opts.maxPayload ? [`max_payload: ${opts.maxPayload}`] : []),
    opts.config ?? '',
  ].join('\n'));
  const proc: ChildProcess = spawn('nats-server', ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`nats-server did not start in 10 s:\n${out}`)), 10_000);
    const onData = (b: Buffer): void => {
      out += b.toString();
      const m = /Listening for client connections on [^\s]*:(\d+)/.exec(out);
      if (m && /Server is ready/.test(out)) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`nats-server exited (${code}):\n${out}`));
    });
  });
  return { proc, port, out: () => out };
}
