/**
 * Where the reconstruction engine keeps the hop events it holds (waiting in the reorder buffer,
 * or part of a live packet): a struct of arrays, one slot per event, instead of the HopEvent
 * objects themselves.
 *
 * Why: at 1M events/s an event is held for the reorder window (50 ms) and until its packet
 * finishes (often an skb reuse tens of ms later, at most the 1 s idle window). Kept as objects,
 * nearly every event outlives a young-generation collection, is copied, promoted and later
 * marked and compacted: that was most of the pipeline's cost. Copied into typed arrays, the
 * parser's HopEvent dies young (almost free to collect) and the held events cost the collector
 * nothing to trace. Strings (kind, skb, device, addresses) are shared, not copied: the parser
 * interns them. A packet's events are a chain through `next`.
 *
 * Slots are handed out in order, going round the arrays and skipping those still in use, rather
 * than from a free list: events are read back (released from the reorder buffer) in about the
 * order they came, so the reads walk memory forwards and the processor's prefetching hides most
 * of the misses; a free list scatters them.
 */
import type { HopEvent, HopKind, HopOuter, HopSent } from './hop-event.js';

/**
 * Numeric fields of a slot, at `slot * NUM + F_*` in `num`. The first eight are what releasing
 * an event and deciding whether it continues a packet read: one cache line of the slot.
 */
export const F_T = 0;
/** Arrival order (ties in the reorder buffer are broken by it). */
export const F_SEQ = 1;
export const F_FAMILY = 2;
export const F_PROTO = 3;
export const F_IPID = 4;
export const F_SPORT = 5;
export const F_DPORT = 6;
export const F_NETNS = 7;
export const F_LEN = 8;
export const F_TCPSEQ = 9;
export const F_ICMPID = 10;
export const F_CPU = 11;
export const F_IFINDEX = 12;
export const F_ICMPTYPE = 13;
export const F_TCPFLAGS = 14;
export const F_REASON = 15;
const NUM = 16;

/** String fields of a slot, at `slot * REFS + R_*` in `ref`. */
export const R_KIND = 0;
export const R_SKB = 1;
export const R_IFNAME = 2;
export const R_SRC = 3;
export const R_DST = 4;
const REFS = 5;
/** Arrays larger than this many slots are given back when the store empties. */
const SHRINK_ABOVE = 1 << 16;

export class HopStore {
  /** Numeric fields, NUM per slot. Float64 keeps every value a HopEvent can carry exactly. */
  num: Float64Array;
  /** String fields, REFS per slot. */
  ref: string[];
  /** Next event of the same packet, -1 at the end. */
  next: Int32Array;
  /** 1 for a slot in use. */
  private inUse: Uint8Array;
  /** Captured bytes by slot; null until an event carries them (most traces never do). */
  heads: Array<Uint8Array | undefined> | null = null;
  /** Tunnel headers by slot (encapsulated hops); null until an event carries them. */
  outers: Array<HopOuter | undefined> | null = null;
  /** A sending socket's own tuple by slot (first hops NATed before any device); null until an event carries one. */
  sents: Array<HopSent | undefined> | null = null;
  /** The hop's own IP fragment field by slot (HopEvent.frag: a sender's own fragments); null until an event carries one. */
  frags: Array<number | undefined> | null = null;
  private capacity: number;
  private readonly initialCapacity: number;
  /** Where the search for the next free slot starts. */
  private cursor = 0;
  /** Slots in use. */
  size = 0;

  constructor(capacity = 1024) {
    this.capacity = capacity;
    this.initialCapacity = capacity;
    this.num = new Float64Array(capacity * NUM);
    this.ref = new Array<string>(capacity * REFS).fill('');
    this.next = new Int32Array(capacity);
    this.inUse = new Uint8Array(capacity);
  }

  /**
   * Takes a free slot for an event to be written into (its fields are stale until then, its
   * `next` is -1, it has no captured bytes). Give it back with `unclaim` if no event comes of it.
   */
  claim(): number {
    let s = this.cursor;
    const inUse = this.inUse;
    // Past a run of slots still in use (events of packets that live long); a long run means the
    // arrays are nearly full: double them and continue in the new half.
    for (let run = 0; inUse[s] !== 0;) {
      s = s + 1 === this.capacity ? 0 : s + 1;
      if (++run === 32 || this.size * 4 >= this.capacity * 3) {
        s = this.grow();
        break;
      }
    }
    this.inUse[s] = 1; // not `inUse`: grow() replaced the array
    this.cursor = s + 1 === this.capacity ? 0 : s + 1;
    this.size++;
    if (this.heads !== null && this.heads[s] !== undefined) this.heads[s] = undefined;
    if (this.outers !== null && this.outers[s] !== undefined) this.outers[s] = undefined;
    if (this.sents !== null && this.sents[s] !== undefined) this.sents[s] = undefined;
    if (this.frags !== null && this.frags[s] !== undefined) this.frags[s] = undefined;
    this.next[s] = -1;
    return s;
  }

  /**
   * Gives back the slot the last `claim` took, unused: the next claim takes it again, as if it
   * had not been taken (arrays the claim grew stay grown).
   */
  unclaim(s: number): void {
    this.inUse[s] = 0;
    this.cursor = s;
    this.size--;
  }

  /** Attaches captured bytes to slot `s`. */
  setHead(s: number, head: Uint8Array): void {
    (this.heads ??= [])[s] = head;
  }

  /** Attaches an encapsulated hop's tunnel headers to slot `s`. */
  setOuter(s: number, outer: HopOuter): void {
    (this.outers ??= [])[s] = outer;
  }

  /** Attaches the hop's own IP fragment field (non-zero) to slot `s`. */
  setFrag(s: number, frag: number): void {
    (this.frags ??= [])[s] = frag;
  }

  /** The hop's own IP fragment field of slot `s` (HopEvent.frag), 0 when it is not a fragment. */
  frag(s: number): number {
    return this.frags?.[s] ?? 0;
  }

  /** Attaches the sending socket's own tuple to slot `s`. */
  setSent(s: number, sent: HopSent): void {
    (this.sents ??= [])[s] = sent;
  }

  /**
   * Copies `ev` into a free slot; the slot's `next` is -1. One line a field, numbers then refs:
   * the two runs look alike only because both are flat field-by-field copies (no loop over names).
   */
  add(ev: HopEvent, seq: number): number {
    const s = this.claim();
    const n = this.num;
    const o = s * NUM;
    n[o + F_T] = ev.t;
    n[o + F_CPU] = ev.cpu;
    n[o + F_NETNS] = ev.netns;
    n[o + F_IFINDEX] = ev.ifindex;
    n[o + F_FAMILY] = ev.family;
    n[o + F_PROTO] = ev.proto;
    n[o + F_LEN] = ev.len;
    n[o + F_IPID] = ev.ipId;
    n[o + F_SPORT] = ev.sport;
    n[o + F_DPORT] = ev.dport;
    n[o + F_ICMPTYPE] = ev.icmpType;
    n[o + F_ICMPID] = ev.icmpId;
    n[o + F_TCPFLAGS] = ev.tcpFlags;
    n[o + F_TCPSEQ] = ev.tcpSeq;
    n[o + F_REASON] = ev.reason;
    n[o + F_SEQ] = seq;
    const r = this.ref;
    const q = s * REFS;
    r[q + R_KIND] = ev.kind;
    r[q + R_SKB] = ev.skb;
    r[q + R_IFNAME] = ev.ifname;
    r[q + R_SRC] = ev.src;
    r[q + R_DST] = ev.dst;
    if (ev.head !== undefined) this.setHead(s, ev.head);
    if (ev.outer !== undefined) this.setOuter(s, ev.outer);
    if (ev.sent !== undefined) this.setSent(s, ev.sent);
    if (ev.frag !== undefined && ev.frag !== 0) this.setFrag(s, ev.frag);
    return s;
  }

  /** Frees the chain of slots from `first` to `last` (linked by `next`). */
  freeChain(first: number, last: number, count: number): void {
    const heads = this.heads;
    const outers = this.outers;
    const sents = this.sents;
    const frags = this.frags;
    for (let s = first; s >= 0; s = s === last ? -1 : (this.next[s] as number)) {
      this.inUse[s] = 0;
      if (heads !== null) heads[s] = undefined;
      if (outers !== null) outers[s] = undefined;
      if (sents !== null) sents[s] = undefined;
      if (frags !== null) frags[s] = undefined;
    }
    this.size -= count;
    // A burst grew the arrays (1 s of packets at 1M events/s is ~170 MB of slots); once every
    // event is gone nothing refers to a slot, so they can start small again.
    if (this.size === 0 && this.capacity > SHRINK_ABOVE) this.reset();
  }

  /** Slots the arrays have room for. */
  get slots(): number {
    return this.capacity;
  }

  private reset(): void {
    const cap = this.initialCapacity;
    this.capacity = cap;
    this.num = new Float64Array(cap * NUM);
    this.ref = new Array<string>(cap * REFS).fill('');
    this.next = new Int32Array(cap);
    this.inUse = new Uint8Array(cap);
    this.heads = null;
    this.outers = null;
    this.sents = null;
    this.frags = null;
    this.cursor = 0;
  }

  t(s: number): number {
    return this.num[s * NUM + F_T] as number;
  }

  kind(s: number): HopKind {
    return this.ref[s * REFS + R_KIND] as HopKind;
  }

  field(s: number, f: number): number {
    return this.num[s * NUM + f] as number;
  }

  str(s: number, r: number): string {
    return this.ref[s * REFS + r] as string;
  }

  /** Whether slot `s` is a free (drop or consume): it ends a packet. */
  isFree(s: number): boolean {
    const k = this.ref[s * REFS + R_KIND];
    return k === 'drop' || k === 'consume';
  }

  /** Doubles the arrays; returns the first new slot. */
  private grow(): number {
    const old = this.capacity;
    const cap = this.capacity * 2;
    const num = new Float64Array(cap * NUM);
    num.set(this.num);
    this.num = num;
    const next = new Int32Array(cap);
    next.set(this.next);
    this.next = next;
    const inUse = new Uint8Array(cap);
    inUse.set(this.inUse);
    this.inUse = inUse;
    for (let i = this.capacity * REFS; i < cap * REFS; i++) this.ref.push('');
    this.capacity = cap;
    return old;
  }
}

export const STORE_NUM = NUM;

/**
 * A number read back from the store, as a small integer when it is one. Read from a
 * Float64Array a number is a double, and objects built from doubles keep every such field as a
 * separate heap number (a Hop would take 60% more memory); a small integer lives in the object.
 */
export function smallInt(v: number): number {
  return (v | 0) === v ? v | 0 : v;
}
export const STORE_REFS = REFS;
