/**
 * The reconstruction engine's index of live packets by clone key (the headers NAT does not
 * touch plus the tuple: equal keys across skbs mean a clone, see shared/reconstruct.ts).
 *
 * A key is not built as a string: an entry names an event in the HopStore that has the key, and
 * lookups compare the fields themselves after a hash of them. Building and hashing a
 * 60-character string per packet, and a Map entry per key, cost more than the rest of placing
 * the packet. Open addressing with linear probing; deletion shifts entries back (no tombstones).
 */
import type { HopStore } from './hop-store.js';
import { STORE_NUM, STORE_REFS, F_FAMILY, F_PROTO, F_IPID, F_LEN, F_TCPSEQ, F_ICMPID, F_SPORT, F_DPORT, R_SRC, R_DST } from './hop-store.js';

function strHash(s: string, h: number): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

const mix = (h: number, v: number): number => Math.imul(h ^ (v | 0), 0x01000193);

/** Hash of the clone key of event `s` (any 32-bit value; equal keys, equal hashes). */
export function cloneKeyHash(st: HopStore, s: number): number {
  const n = st.num;
  const o = s * STORE_NUM;
  const q = s * STORE_REFS;
  let h = strHash(st.ref[q + R_SRC] as string, 0x811c9dc5);
  h = strHash(st.ref[q + R_DST] as string, h);
  h = mix(h, n[o + F_FAMILY] as number);
  h = mix(h, n[o + F_PROTO] as number);
  h = mix(h, n[o + F_IPID] as number);
  h = mix(h, n[o + F_LEN] as number);
  h = mix(h, n[o + F_TCPSEQ] as number);
  h = mix(h, n[o + F_ICMPID] as number);
  h = mix(h, n[o + F_SPORT] as number);
  h = mix(h, n[o + F_DPORT] as number);
  return (h ^ (h >>> 15)) | 0;
}

/**
 * Whether two events have different clone keys. (The string key the engine used to build,
 * `family|proto|ipId|len|tcpSeq|icmpId|src|sport|dst|dport`, is equal exactly when these fields
 * are, for the integers and addresses events carry.)
 */
export function keyChanged(st: HopStore, a: number, b: number): boolean {
  const n = st.num;
  const r = st.ref;
  const oa = a * STORE_NUM;
  const ob = b * STORE_NUM;
  const qa = a * STORE_REFS;
  const qb = b * STORE_REFS;
  return n[oa + F_IPID] !== n[ob + F_IPID] || n[oa + F_LEN] !== n[ob + F_LEN] || n[oa + F_SPORT] !== n[ob + F_SPORT]
    || n[oa + F_DPORT] !== n[ob + F_DPORT] || r[qa + R_SRC] !== r[qb + R_SRC] || r[qa + R_DST] !== r[qb + R_DST]
    || n[oa + F_TCPSEQ] !== n[ob + F_TCPSEQ] || n[oa + F_ICMPID] !== n[ob + F_ICMPID] || n[oa + F_PROTO] !== n[ob + F_PROTO]
    || n[oa + F_FAMILY] !== n[ob + F_FAMILY];
}

/** Clone key → packet (a number the caller gives), each key named by an event in the store. */
export class CloneIndex {
  private hashes: Int32Array;
  /** Packet of each entry, -1 for an empty entry. */
  private packets: Int32Array;
  /** An event that has the entry's key (the caller keeps it alive while the entry exists). */
  private events: Int32Array;
  private mask: number;
  private count = 0;

  constructor(private readonly store: HopStore, bits = 12) {
    this.hashes = new Int32Array(1 << bits);
    this.packets = new Int32Array(1 << bits).fill(-1);
    this.events = new Int32Array(1 << bits);
    this.mask = (1 << bits) - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Position of the entry for the key of event `s` (whose hash is `h`), -1 when there is none. */
  private find(s: number, h: number): number {
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      if ((this.packets[i] as number) < 0) return -1;
      if (this.hashes[i] === h) {
        const e = this.events[i] as number;
        if (e === s || !keyChanged(this.store, e, s)) return i;
      }
    }
  }

  /** The packet for the key of event `s`, -1 when none. */
  get(s: number, h: number): number {
    const i = this.find(s, h);
    return i < 0 ? -1 : (this.packets[i] as number);
  }

  /**
   * Maps the key of event `s` to `packet` (`s` must be that packet's event). Returns the packet
   * the key mapped to before, -1 when none.
   */
  set(s: number, h: number, packet: number): number {
    const mask = this.mask;
    let i = h & mask;
    for (; (this.packets[i] as number) >= 0; i = (i + 1) & mask) {
      if (this.hashes[i] === h) {
        const e = this.events[i] as number;
        if (e === s || !keyChanged(this.store, e, s)) {
          const before = this.packets[i] as number;
          this.packets[i] = packet;
          this.events[i] = s;
          return before;
        }
      }
    }
    this.packets[i] = packet;
    this.events[i] = s;
    this.hashes[i] = h;
    if (++this.count * 2 > mask) this.grow();
    return -1;
  }

  /** Forgets the key of event `s` if it maps to `packet`. */
  deleteIf(s: number, h: number, packet: number): void {
    const i = this.find(s, h);
    if (i >= 0 && this.packets[i] === packet) this.removeAt(i);
  }

  private removeAt(hole: number): void {
    const mask = this.mask;
    let i = hole;
    for (let j = (i + 1) & mask; (this.packets[j] as number) >= 0; j = (j + 1) & mask) {
      const k = (this.hashes[j] as number) & mask;
      // An entry whose home is cyclically in (i, j] is still reachable; any other moves into the hole.
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (stays) continue;
      this.packets[i] = this.packets[j] as number;
      this.events[i] = this.events[j] as number;
      this.hashes[i] = this.hashes[j] as number;
      i = j;
    }
    this.packets[i] = -1;
    this.count--;
  }

  private grow(): void {
    const { hashes, packets, events } = this;
    const size = hashes.length * 2;
    this.hashes = new Int32Array(size);
    this.packets = new Int32Array(size).fill(-1);
    this.events = new Int32Array(size);
    this.mask = size - 1;
    for (let j = 0; j < packets.length; j++) {
      if ((packets[j] as number) < 0) continue;
      let i = (hashes[j] as number) & this.mask;
      while ((this.packets[i] as number) >= 0) i = (i + 1) & this.mask;
      this.packets[i] = packets[j] as number;
      this.events[i] = events[j] as number;
      this.hashes[i] = hashes[j] as number;
    }
  }
}
