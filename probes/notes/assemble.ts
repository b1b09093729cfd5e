/**
 * The notes tier's probe blocks (this folder, tracepoints) and the function-level tier's
 * (probes/deep/, kprobes), ready to append to the hop program (buildHopProgram's `extraBlocks`):
 * they read its @follow map and print note lines (note-line.ts). As with the hop probes, only
 * numbers and a filter expression compiled from a parsed AST are substituted.
 */
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { HopNoteKind } from '../../shared/hop-event.js';
import { FLOW_MATCH, probesDir } from '../assemble.js';

export interface NoteProbe {
  /** File in probes/notes/ or probes/deep/. */
  readonly file: string;
  readonly kinds: readonly HopNoteKind[];
  /** Tracepoints (group:name) the block attaches to. */
  readonly tracepoints?: readonly string[];
  /** Kernel functions it kprobes (the function-level tier). */
  readonly functions?: readonly string[];
}

/** Tracepoint notes, in attach order. current.bt must come first: the others read its @cur map. */
export const NOTE_PROBES: readonly NoteProbe[] = [
  { file: 'current.bt', kinds: [], tracepoints: ['net:netif_receive_skb'] },
  { file: 'fib.bt', kinds: ['fib'], tracepoints: ['fib:fib_table_lookup'] },
  { file: 'fib6.bt', kinds: ['fib6'], tracepoints: ['fib6:fib6_table_lookup'] },
  { file: 'fdb.bt', kinds: ['fdb'], tracepoints: ['bridge:br_fdb_update'] },
  { file: 'neigh.bt', kinds: ['neigh'], tracepoints: ['neigh:neigh_event_send_done', 'neigh:neigh_event_send_dead'] },
  { file: 'icmp.bt', kinds: ['icmp'], tracepoints: ['icmp:icmp_send'] },
  { file: 'qdisc.bt', kinds: ['qdisc'], tracepoints: ['qdisc:qdisc_enqueue', 'qdisc:qdisc_dequeue'] },
];

/** Function-level probes (probes/deep/): kernels with kprobes only. */
export const DEEP_PROBES: readonly NoteProbe[] = [
  { file: 'nf_hook_slow.bt', kinds: ['nfhook'], functions: ['nf_hook_slow'] },
  { file: 'bridge.bt', kinds: ['brfwd', 'brflood'], functions: ['br_forward', 'br_flood'] },
  { file: 'veth.bt', kinds: ['veth'], functions: ['veth_xmit'] },
  { file: 'ip_forward.bt', kinds: ['ipfwd'], functions: ['ip_forward'] },
  { file: 'nat.bt', kinds: ['nat'], functions: ['nf_nat_manip_pkt'] },
];

function dirOf(sub: 'notes' | 'deep'): string {
  const candidates = [new URL(`../${sub}/`, import.meta.url), new URL(`../../probes/${sub}/`, import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(dir)) return dir;
  }
  throw new Error(`probe fragments (probes/${sub}/) not found beside the program`);
}

const strip = (s: string): string => s.split('\n').filter((l) => !/^\s*\/\//.test(l)).join('\n');

export interface NoteBlockOptions {
  readonly filterExpr: string;
  /** Tracepoints this kernel lacks: blocks that need them are left out. */
  readonly missingTracepoints?: ReadonlySet<string>;
  /** Add the function-level tier (kprobes must work). */
  readonly deep?: boolean;
  /** Kernel functions that cannot be probed: deep blocks that need them are left out. */
  readonly missingFunctions?: ReadonlySet<string>;
}

/** Blocks for the notes tier (and, with `deep`, the function-level tier). */
export function buildNoteBlocks(opts: NoteBlockOptions): string[] {
  const blocks: string[] = [];
  for (const p of NOTE_PROBES) {
    if (p.tracepoints?.some((tp) => opts.missingTracepoints?.has(tp))) continue;
    blocks.push(noteBlock(p, opts.filterExpr));
  }
  if (opts.deep) {
    for (const p of DEEP_PROBES) {
      if (p.functions?.some((f) => opts.missingFunctions?.has(f))) continue;
      blocks.push(noteBlock(p, opts.filterExpr));
    }
  }
  return blocks;
}

/** The text of one note or deep probe file, comments removed, placeholders filled. */
export function noteBlock(probe: NoteProbe, filterExpr: string): string {
  if (!/^[\s\w$()&|!=<>^~+-]*$/.test(filterExpr)) throw new Error('compiled filter has unexpected characters');
  const sub = probe.functions ? 'deep' : 'notes';
  const raw = readFileSync(`${dirOf(sub)}${probe.file}`, 'utf8');
  const filtered = filterExpr.trim() !== '1';
  const decode = strip(readFileSync(`${probesDir()}decode.bt`, 'utf8'));
  // Replace the marker first (it is a comment line), then drop the remaining comments.
  const body = raw.replace(/^\s*\/\/ @decode\s*$/m, () => decode);
  return strip(body)
    .replace('{{FILTER}}', () => filterExpr)
    .replace('{{FLOW_MATCH}}', filtered ? FLOW_MATCH : '');
}
