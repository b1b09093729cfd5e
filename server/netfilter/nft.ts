/**
 * Running nft inside a network namespace (`nsenter --net=PATH nft ...`, argv only) and the table
 * chores built on it: install hoptrace's tracing tables (inet, and bridge where there is a bridge),
 * remove them, read which chain is on which hook, and clean up tables a killed run left behind.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { HOPTRACE_TABLE_RE, isTraceFamily, parseTableOwner, type TraceFamily } from '../../shared/netfilter/nft-filter.js';
import type { NfHook } from '../../shared/netfilter/types.js';
import { stripCounters } from '../../shared/netfilter/monitor-parse.js';

/** A namespace nft can be run in: `/run/netns/NAME` or `/proc/PID/ns/net`. */
export interface NftNamespace {
  readonly netns: number;
  readonly name: string;
  readonly path: string;
}

const PATH_RE = /^(?:\/run\/netns\/[^/\0]+|\/proc\/\d+\/ns\/net)$/;

export function checkNamespacePath(path: string): string {
  if (!PATH_RE.test(path) || path.includes('/../') || path.endsWith('/..')) throw new RangeError(`not a namespace path: ${path}`);
  return path;
}

export interface NftResult {
  readonly ok: boolean;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs nft in the namespace at `path`. Never throws for nft's own failures: check `ok`. */
export async function nftIn(path: string, args: readonly string[], input?: string): Promise<NftResult> {
  const r = await execa('nsenter', [`--net=${checkNamespacePath(path)}`, 'nft', ...args], {
    reject: false,
    timeout: 15_000,
    ...(input !== undefined ? { input } : { stdin: 'ignore' as const }),
  });
  return { ok: r.exitCode === 0, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? '').trim() };
}

/** One of hoptrace's tables in a namespace. */
export interface OwnTable {
  readonly family: TraceFamily;
  readonly name: string;
}

/** hoptrace's tables in a namespace, every family it adds them in (inet, bridge). */
export async function ownTables(path: string): Promise<OwnTable[]> {
  const r = await nftIn(path, ['-j', 'list', 'tables']);
  if (!r.ok) return [];
  try {
    const doc = JSON.parse(r.stdout) as { nftables?: Array<{ table?: { family?: string; name?: string } }> };
    const out: OwnTable[] = [];
    for (const e of doc.nftables ?? []) {
      const t = e.table;
      if (t && typeof t.family === 'string' && isTraceFamily(t.family) && typeof t.name === 'string' && HOPTRACE_TABLE_RE.test(t.name)) {
        out.push({ family: t.family, name: t.name });
      }
    }
    return out;
  } catch {
    return [];
  }
}

/** Names of hoptrace's tables of one family (default inet) in a namespace. */
export async function hoptraceTables(path: string, family: TraceFamily = 'inet'): Promise<string[]> {
  return (await ownTables(path)).filter((t) => t.family === family).map((t) => t.name);
}

/**
 * Whether the namespace has a bridge device (then it also gets a bridge family table). `ip`
 * rather than nft: nft knows nothing of devices that no rule names.
 */
export async function hasBridge(path: string): Promise<boolean> {
  const r = await execa('nsenter', [`--net=${checkNamespacePath(path)}`, 'ip', '-j', 'link', 'show', 'type', 'bridge'], {
    reject: false, timeout: 15_000, stdin: 'ignore',
  });
  if (r.exitCode !== 0) return false;
  try {
    const links = JSON.parse(String(r.stdout ?? '') || '[]') as unknown[];
    return Array.isArray(links) && links.length > 0;
  } catch {
    return false;
  }
}

/** Base chains of a namespace's ruleset: `family table chain` → hook. */
export async function chainHooks(path: string): Promise<Map<string, NfHook>> {
  const out = new Map<string, NfHook>();
  const r = await nftIn(path, ['-j', 'list', 'chains']);
  if (!r.ok) return out;
  try {
    const doc = JSON.parse(r.stdout) as { nftables?: Array<{ chain?: { family?: string; table?: string; name?: string; hook?: string } }> };
    for (const e of doc.nftables ?? []) {
      const c = e.chain;
      if (c?.family && c.table && c.name && c.hook) out.set(`${c.family} ${c.table} ${c.name}`, c.hook as NfHook);
    }
  } catch {
    // An unreadable ruleset leaves hooks to the iptables chain names.
  }
  return out;
}

/** Text of one rule by handle (for rules added after the monitor started), counters removed. */
export async function ruleText(path: string, family: string, table: string, chain: string, handle: number): Promise<string | null> {
  if (!/^[a-z0-9]+$/.test(family)) return null;
  const r = await nftIn(path, ['-a', 'list', 'chain', family, table, chain]);
  if (!r.ok) return null;
  const line = r.stdout.split('\n').find((l) => l.trimEnd().endsWith(`# handle ${handle}`) && !/^\s*chain /.test(l));
  return line ? stripCounters(line.replace(/\s# handle \d+\s*$/, '')) : null;
}

export async function installTable(path: string, script: string): Promise<NftResult> {
  return nftIn(path, ['-f', '-'], script);
}

export async function removeTable(path: string, name: string, family: TraceFamily = 'inet'): Promise<NftResult> {
  if (!HOPTRACE_TABLE_RE.test(name)) throw new RangeError(`not a hoptrace table: ${name}`);
  if (!isTraceFamily(family)) throw new RangeError(`not a trace table family: ${String(family)}`);
  return nftIn(path, ['delete', 'table', family, name]);
}

/** Start time of a process (clock ticks after boot, /proc/PID/stat field 22); null if it is gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: count fields after its closing one.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const v = Number(rest[19]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Whether the run that wrote this owner comment is still alive (same pid, same start time). */
export function ownerAlive(owner: { pid: number; startTime: number } | null): boolean {
  if (!owner) return false;
  return processStartTime(owner.pid) === owner.startTime;
}

/** Owner of a hoptrace table, from its comment; null when it has none (a bare `hoptrace` table). */
export async function tableOwner(path: string, name: string, family: TraceFamily = 'inet'): Promise<{ pid: number; startTime: number } | null> {
  if (!isTraceFamily(family) || !HOPTRACE_TABLE_RE.test(name)) return null;
  const r = await nftIn(path, ['list', 'table', family, name]);
  if (!r.ok) return null;
  const m = /^\s*comment "([^"]*)"/m.exec(r.stdout);
  return parseTableOwner(m?.[1]);
}

export interface Leftover {
  readonly ns: string;
  readonly path: string;
  readonly table: string;
  readonly family: TraceFamily;
  readonly removed: boolean;
  readonly error?: string;
}

/**
 * Removes hoptrace tables whose run is gone (SIGKILLed, crashed) from every namespace given.
 * Tables of runs still alive — another trace, the service — are left alone.
 */
export async function cleanLeftovers(namespaces: readonly NftNamespace[]): Promise<Leftover[]> {
  const out: Leftover[] = [];
  await Promise.all(namespaces.map(async (ns) => {
    for (const { family, name: table } of await ownTables(ns.path)) {
      if (ownerAlive(await tableOwner(ns.path, table, family))) continue;
      const r = await removeTable(ns.path, table, family);
      out.push({ ns: ns.name, path: ns.path, table, family, removed: r.ok, ...(r.ok ? {} : { error: r.stderr }) });
    }
  }));
  return out;
}
