/**
 * Test helpers for the service: a synthetic hop source (so the stream, backpressure and API can be
 * tested at any rate and without root), the capabilities of a host that can trace, a typed
 * socket.io client, REST calls, and a count of the bpftrace processes this test process started.
 */
import { EventEmitter } from 'node:events';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { io as ioClient, type Socket } from 'socket.io-client';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Capabilities } from '../../shared/api-types.js';
import type { ClientToServerEvents, ServerToClientEvents } from '../../shared/stream-events.js';
import type { BpftraceExit } from '../../server/bpftrace.js';
import type { TraceSessionEvents } from '../../server/trace-session.js';
import { dropReasonsFrom } from '../../server/drop-reasons.js';
import type { HopSource } from '../../server/service/feed.js';
import { tracked } from '../helpers/children.js';

export type TestSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/**
 * What detectCapabilities() would report on this project's test machine (root, BTF, tracepoints;
 * no kprobes or kfunc), so a service started with a synthetic source never probes the real host.
 * No `tiers`: they are optional in the type, and the tests that need them build their own.
 */
export const SYNTHETIC_CAPS: Capabilities = {
  detectedAt: new Date(0).toISOString(), root: true, kernel: 'test', bpftrace: { version: 'v0.17.0' }, btf: true,
  tracefs: '/sys/kernel/tracing',
  probes: {
    tracepoint: { available: true, reason: null },
    kprobe: { available: false, reason: 'no kprobe_events' },
    kfunc: { available: false, reason: 'EPERM' },
  },
  tracepoints: {}, canTrace: true, problems: [],
};

export const NS_A = 4026530001;
export const NS_B = 4026530002;

function nowNs(): number {
  return Number(process.hrtime.bigint());
}

/** Stands in for bpftrace: emits coherent packets (xmit in NS_A, recv and consume in NS_B). */
export class SyntheticSource extends EventEmitter<TraceSessionEvents> implements HopSource {
  readonly dropReasons = dropReasonsFrom(new Map([[2, 'NOT_SPECIFIED'], [12, 'NETFILTER_DROP']]));
  started = false;
  stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private next = 0;

  constructor(readonly filter: string, private readonly failWith?: string) {
    super();
  }

  get pid(): number | undefined {
    return this.started && !this.stopped ? 424242 : undefined;
  }

  async start(): Promise<void> {
    await new Promise((r) => setTimeout(r, 5));
    if (this.failWith) throw new Error(this.failWith);
    this.started = true;
  }

  async stop(): Promise<BpftraceExit | undefined> {
    clearInterval(this.timer);
    if (this.stopped) return undefined;
    this.stopped = true;
    const exit: BpftraceExit = { code: 0, signal: null, requested: true, stderr: '' };
    this.emit('exit', exit);
    return exit;
  }

  accepts(): boolean {
    return true;
  }

  /** Emits `packets` packets of three hops each, now. */
  burst(packets: number): void {
    const t = nowNs();
    for (let i = 0; i < packets; i++) {
      const n = this.next++;
      const base = {
        cpu: 0, skb: (0x100000 + (n % 50_000)).toString(16), ifindex: 2, ifname: 'eth0', family: 4 as const, proto: 17,
        len: 60, ipId: n & 0xffff, src: '10.250.0.1', dst: '10.250.0.2', sport: 40000, dport: 5000,
        icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
      };
      const evs: HopEvent[] = [
        { ...base, kind: 'xmit', t: t + i * 30, netns: NS_A },
        { ...base, kind: 'recv', t: t + i * 30 + 10, netns: NS_B },
        { ...base, kind: 'consume', t: t + i * 30 + 20, netns: NS_B },
      ];
      for (const ev of evs) this.emit('hop', ev);
    }
  }

  /** Emits one hop event with the given fields over a plain UDP template. */
  emitHop(fields: Partial<HopEvent>): void {
    this.emit('hop', {
      kind: 'xmit', t: nowNs(), cpu: 0, skb: 'ffff0001', netns: NS_A, ifindex: 1, ifname: 'lo', family: 4, proto: 6, len: 60, ipId: 1,
      src: '127.0.0.1', dst: '127.0.0.1', sport: 1, dport: 2, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0, ...fields,
    });
  }

  /** Emits about `eventsPerSec` events per second until stopped. */
  run(eventsPerSec: number): void {
    clearInterval(this.timer);
    const perTick = Math.max(1, Math.round(eventsPerSec / 3 / 100));
    this.timer = setInterval(() => this.burst(perTick), 10);
  }

  pause(): void {
    clearInterval(this.timer);
  }

  /** Pretends bpftrace died on its own. */
  die(stderr: string): void {
    clearInterval(this.timer);
    this.stopped = true;
    this.emit('exit', { code: 1, signal: null, requested: false, stderr });
  }
}

export function syntheticFactory(): { made: SyntheticSource[]; factory: (filter: string) => SyntheticSource } {
  const made: SyntheticSource[] = [];
  return {
    made,
    factory: (filter) => {
      const s = new SyntheticSource(filter);
      made.push(s);
      return s;
    },
  };
}

/** Connects a typed client; resolves once connected, rejects with the connect_error. */
export function connect(url: string, opts: Parameters<typeof ioClient>[1] = {}): Promise<TestSocket> {
  const socket: TestSocket = ioClient(url, { transports: ['websocket'], reconnection: false, forceNew: true, ...opts });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err) => {
      socket.close();
      reject(err);
    });
  });
}

export interface ApiResult<T = unknown> {
  readonly status: number;
  readonly body: T;
  readonly headers: Headers;
}

export async function api<T = unknown>(base: string, path: string, init: RequestInit = {}): Promise<ApiResult<T>> {
  const res = await fetch(new URL(path, base), init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = text === '' ? null : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: body as T, headers: res.headers };
}

export function postJson<T = unknown>(base: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<ApiResult<T>> {
  return api<T>(base, path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** bpftrace processes whose parent is this process (setpriv execs into bpftrace, keeping our pid as parent). */
export function myBpftracePids(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m && (m[1] === 'bpftrace' || m[1] === 'setpriv') && Number(m[2]) === process.pid) out.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return out;
}

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 10_000, stepMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export const isRoot = process.getuid?.() === 0;

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Runs the hoptrace CLI from source, as a user would (`node --import tsx server/cli.ts ...`). */
export function runCli(args: string[], env: Record<string, string> = {}): ResultPromise<{ reject: false; cwd: string; env: Record<string, string> }> {
  return tracked(execa(process.execPath, ['--import', 'tsx', 'server/cli.ts', ...args], { reject: false, cwd: REPO, env }));
}
