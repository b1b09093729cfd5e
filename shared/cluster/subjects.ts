/**
 * The bus layout of a hoptrace cluster (issue 17): one JetStream stream, subjects per node.
 *
 *   hoptrace.<node>.hops      HopBatch (shared/wire.proto), header Hoptrace-Session: <id>; with the
 *                             agent's clock (`clock`), and heartbeats (no events) while a session is quiet
 *   hoptrace.<node>.topology  NodeSnapshot as JSON (below)
 *   hoptrace.<node>.depth     DepthBatch (shared/wire.proto: notes, netfilter rule-trace steps), header Hoptrace-Session
 *   hoptrace.<node>.control   core NATS request/reply: the hub asks the agent for sessions (not stored)
 *
 * Node names become subject tokens, so they are checked here: no dots, spaces or wildcards.
 */
import type { Topology } from '../topology/model.js';
import type { NodeCapability } from './capability.js';

export const STREAM = 'HOPTRACE';
export const SUBJECT_ROOT = 'hoptrace';
/** What the stream keeps: every node's hops, depth events and topology. Control requests are never stored. */
export const STREAM_SUBJECTS = [`${SUBJECT_ROOT}.*.hops`, `${SUBJECT_ROOT}.*.topology`, `${SUBJECT_ROOT}.*.depth`] as const;
export const SESSION_HEADER = 'Hoptrace-Session';
/**
 * On a hop batch: how many of this session's batches the agent's outbox dropped (oldest first,
 * the bus away too long) since the previous batch it published. The hub tells them from batches
 * lost on the way (sequence gaps).
 */
export const DROPPED_HEADER = 'Hoptrace-Dropped';

/** A DROPPED_HEADER value: a count, 0 for anything else. */
export function droppedCount(v: string | undefined): number {
  return v !== undefined && /^\d{1,9}$/.test(v) ? Number(v) : 0;
}

/**
 * An agent's JetStream message id (Nats-Msg-Id) for one of its batches: JetStream drops a copy
 * published twice within its duplicate window. `epoch` names the agent's run (its start time):
 * a restarted agent numbers its batches from 1 again, and the hub tells the runs apart by it.
 */
export function batchMessageId(node: string, session: string, epoch: string, id: string): string {
  return `${node}.${session}.${epoch}.${id}`;
}

/** The agent run (epoch) of a batch's message id, '' when it is not one of batchMessageId's. */
export function messageEpoch(msgId: string | undefined): string {
  const parts = msgId?.split('.') ?? [];
  return parts.length === 4 && /^[a-z0-9]{1,16}$/.test(parts[2]!) ? parts[2]! : '';
}

const NODE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function isNodeName(name: string): boolean {
  return NODE_NAME.test(name);
}

/** Throws a sentence for a name that cannot be a subject token. */
export function checkNodeName(name: string): string {
  if (!isNodeName(name)) throw new Error(`node name must be 1-64 letters, digits, '-' or '_' (it becomes a NATS subject token), got '${name.slice(0, 80)}'`);
  return name;
}

export const hopsSubject = (node: string): string => `${SUBJECT_ROOT}.${checkNodeName(node)}.hops`;
export const topologySubject = (node: string): string => `${SUBJECT_ROOT}.${checkNodeName(node)}.topology`;
export const depthSubject = (node: string): string => `${SUBJECT_ROOT}.${checkNodeName(node)}.depth`;
export const controlSubject = (node: string): string => `${SUBJECT_ROOT}.${checkNodeName(node)}.control`;

export type SubjectKind = 'hops' | 'topology' | 'depth';

/** node and kind of a stored subject, or null for anything else (a foreign subject on the stream). */
export function parseSubject(subject: string): { node: string; kind: SubjectKind } | null {
  const parts = subject.split('.');
  if (parts.length !== 3 || parts[0] !== SUBJECT_ROOT) return null;
  const [, node, kind] = parts as [string, string, string];
  if (!isNodeName(node) || (kind !== 'hops' && kind !== 'topology' && kind !== 'depth')) return null;
  return { node, kind };
}

/** What an agent publishes on hoptrace.<node>.topology: its namespaces and their model. */
export interface NodeSnapshot {
  readonly node: string;
  /** The agent's kernel monotonic clock when it was taken (ns), the clock of its hops' `t`. */
  readonly t: number;
  /** Wall clock (ms since the epoch) at the same moment. */
  readonly wallMs: number;
  /** The namespace selector the agent runs with ('' for all). */
  readonly selector: string;
  readonly topology: Topology;
  /** The agent's outbox counters (shared/cluster/pipeline.ts AgentCounters); absent from older agents. */
  readonly agent?: { readonly droppedBatches: number; readonly droppedEvents: number; readonly buffered: number };
  /** Whether the node can trace, and why not (shared/cluster/capability.ts); absent from older agents. */
  readonly capability?: NodeCapability;
}

/** A session the hub asks an agent for (request on hoptrace.<node>.control). */
export interface SessionRequest {
  readonly op: 'start' | 'stop';
  /** The hub's session id: [A-Za-z0-9_-]{1,64}. */
  readonly session: string;
  readonly filter?: string;
  readonly sample?: number;
  /** Also attach the notes tier (route lookups, bridge learning, …), as `trace --notes`. */
  readonly notes?: boolean;
  /** Also run nft's rule trace beside the probes, as `trace --netfilter`. */
  readonly netfilter?: boolean;
  /** The agent stops a session nobody renewed (another 'start') within this many ms. */
  readonly leaseMs?: number;
}

export interface SessionReply {
  readonly ok: boolean;
  readonly error?: string;
  /** Canonical filter text the agent runs. */
  readonly filter?: string;
}

const SESSION_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** Validates a control request's JSON; returns a sentence for anything else. */
export function parseSessionRequest(data: unknown): SessionRequest | string {
  if (typeof data !== 'object' || data === null) return 'not an object';
  const r = data as Record<string, unknown>;
  if (r.op !== 'start' && r.op !== 'stop') return 'op must be start or stop';
  if (typeof r.session !== 'string' || !SESSION_ID.test(r.session)) return 'session must be 1-64 letters, digits, - or _';
  if (r.filter !== undefined && (typeof r.filter !== 'string' || r.filter.length > 4096)) return 'filter must be text of at most 4096 characters';
  if (r.sample !== undefined && (!Number.isInteger(r.sample) || (r.sample as number) < 1 || (r.sample as number) > 65536)) return 'sample must be 1-65536';
  for (const k of ['notes', 'netfilter'] as const) if (r[k] !== undefined && typeof r[k] !== 'boolean') return `${k} must be true or false`;
  if (r.leaseMs !== undefined && (!Number.isInteger(r.leaseMs) || (r.leaseMs as number) < 1000 || (r.leaseMs as number) > 3_600_000)) return 'leaseMs must be 1000-3600000';
  return {
    op: r.op, session: r.session,
    ...(r.filter !== undefined ? { filter: r.filter as string } : {}),
    ...(r.sample !== undefined ? { sample: r.sample as number } : {}),
    ...(r.leaseMs !== undefined ? { leaseMs: r.leaseMs as number } : {}),
    ...(r.notes === true ? { notes: true } : {}),
    ...(r.netfilter === true ? { netfilter: true } : {}),
  };
}
