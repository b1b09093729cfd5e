/**
 * One `nft -a monitor trace` process inside one namespace, its lines parsed into netfilter
 * events. Runs under `setpriv --pdeathsig` (like bpftrace) so it dies with us, and is ready once
 * its netlink socket has joined the nftables trace group: events from before that are lost.
 */
import { execa, type ResultPromise } from 'execa';
import { existsSync, readFileSync } from 'node:fs';
import { TraceAssembler, type HookResolver } from '../../shared/netfilter/monitor-parse.js';
import type { NetfilterEvent } from '../../shared/netfilter/types.js';
import { checkNamespacePath, type NftNamespace } from './nft.js';

/** nfnetlink multicast group of nftables traces (NFNLGRP_NFTRACE = 9): bit 8 of the groups mask. */
const NFTRACE_GROUP_BIT = 1 << 8;
/** NETLINK_NETFILTER. */
const NETLINK_NETFILTER = 12;

/** Whether process `pid` has a netfilter netlink socket subscribed to traces (from /proc/PID/net/netlink). */
export function subscribedToTraces(pid: number): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/netlink`, 'utf8');
  } catch {
    return false;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (Number(f[1]) === NETLINK_NETFILTER && Number(f[2]) === pid && (parseInt(f[3] ?? '0', 16) & NFTRACE_GROUP_BIT) !== 0) return true;
  }
  return false;
}

export interface MonitorHandlers {
  onEvent(ev: NetfilterEvent): void;
  /** The monitor ended without being asked to (namespace gone, nft failed). */
  onExit?(info: { code: number | null; signal: string | null; stderr: string }): void;
}

export interface MonitorOptions {
  readonly hookOf: HookResolver;
  readonly now: () => number;
  readonly readyTimeoutMs?: number;
}

export class NftMonitor {
  private child: ResultPromise | undefined;
  private stopping = false;
  private stderr = '';
  private assembler: TraceAssembler;
  lines = 0;

  constructor(readonly ns: NftNamespace, private readonly handlers: MonitorHandlers, private readonly opts: MonitorOptions) {
    this.assembler = new TraceAssembler({ ns: ns.name, netns: ns.netns, hookOf: opts.hookOf, now: opts.now });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the monitor; resolves once it receives traces, rejects if it dies first. */
  async start(): Promise<void> {
    const nsArgs = [`--net=${checkNamespacePath(this.ns.path)}`, 'nft', '-a', 'monitor', 'trace'];
    // setpriv execs nsenter which execs nft: one pid throughout, which the readiness check relies on.
    const [cmd, args] = existsSync('/usr/bin/setpriv')
      ? ['setpriv', ['--pdeathsig', 'SIGTERM', '--', 'nsenter', ...nsArgs]]
      : ['nsenter', nsArgs];
    const child = execa(cmd, args, { reject: false, buffer: false, stdin: 'ignore', killSignal: 'SIGTERM' });
    this.child = child;
    let rest = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const l of lines) {
        this.lines++;
        const ev = this.assembler.push(l);
        if (ev) this.handlers.onEvent(ev);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (c: string) => {
      if (this.stderr.length < 16_384) this.stderr += c;
    });
    let exited = false;
    const done = Promise.resolve(child).then((r) => {
      exited = true;
      if (!this.stopping) this.handlers.onExit?.({ code: r.exitCode ?? null, signal: r.signal ?? null, stderr: this.stderr.trim() });
    });
    const deadline = Date.now() + (this.opts.readyTimeoutMs ?? 10_000);
    for (;;) {
      if (exited) throw new Error(`nft monitor in ${this.ns.name} exited: ${this.stderr.trim() || 'no output'}`);
      if (child.pid !== undefined && subscribedToTraces(child.pid)) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        await done;
        throw new Error(`nft monitor in ${this.ns.name} did not subscribe to traces`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    if (!this.child) return;
    this.stopping = true;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 2000);
    try {
      await this.child;
    } finally {
      clearTimeout(timer);
    }
  }
}
