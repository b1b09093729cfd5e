/**
 * An agent's outbox (issue 17): hop batches (and depth batches: notes, netfilter steps) waiting
 * for the bus, in the order they were made.
 * While NATS is away (a restart, a cut) batches wait here and go out in order once it is back;
 * the box is bounded in bytes and in batches, and past either bound the oldest waiting batch is
 * dropped and counted — recent traffic is what someone debugging an outage wants, and an agent's
 * memory must not follow the bus's trouble. Pure: server/hub/agent.ts does the publishing.
 */

export interface OutboxItem {
  readonly session: string;
  /**
   * Hop batch (default), depth batch, or heartbeat (a hop batch with no events, the agent's clock
   * only): only hop batches' drops are said in Hoptrace-Dropped (they number the hops sequence);
   * a heartbeat dropped is not counted at all (nothing of the node's traffic is lost with it).
   */
  readonly kind?: 'hops' | 'depth' | 'heartbeat';
  readonly seq: number;
  readonly data: Uint8Array;
  readonly events: number;
}

export interface OutboxLimits {
  /** Most bytes waiting (default 64 MiB). */
  readonly maxBytes?: number;
  /** Most batches waiting (default 4096). */
  readonly maxBatches?: number;
}

export const OUTBOX_DEFAULT_BYTES = 64 * 1024 * 1024;
export const OUTBOX_DEFAULT_BATCHES = 4096;

export class Outbox {
  private readonly items: OutboxItem[] = [];
  private head = 0;
  private size = 0;
  /** The item being sent (taken by `next`, not yet `done`): never dropped under it. */
  private sending: OutboxItem | null = null;
  readonly maxBytes: number;
  readonly maxBatches: number;
  droppedBatches = 0;
  droppedEvents = 0;
  /** Batches dropped per session since that session's last batch went out. */
  private readonly dropsSince = new Map<string, number>();

  constructor(limits: OutboxLimits = {}) {
    this.maxBytes = limits.maxBytes ?? OUTBOX_DEFAULT_BYTES;
    this.maxBatches = limits.maxBatches ?? OUTBOX_DEFAULT_BATCHES;
  }

  /** Batches waiting (the one being sent included). */
  get length(): number {
    return this.items.length - this.head + (this.sending ? 1 : 0);
  }

  get bytes(): number {
    return this.size + (this.sending?.data.length ?? 0);
  }

  /**
   * Adds a batch; drops the oldest waiting ones while over a bound. Returns how many were dropped.
   * A heartbeat never pushes a batch out: when it does not fit, it is not added.
   */
  add(item: OutboxItem): number {
    if (item.kind === 'heartbeat' && (this.length + 1 > this.maxBatches || this.bytes + item.data.length > this.maxBytes)) return 0;
    this.items.push(item);
    this.size += item.data.length;
    let dropped = 0;
    while (this.items.length - this.head > 0 && (this.length > this.maxBatches || this.bytes > this.maxBytes)) {
      const old = this.items[this.head]!;
      this.items[this.head] = undefined as unknown as OutboxItem;
      this.head++;
      this.size -= old.data.length;
      if (old.kind === 'heartbeat') continue;
      this.droppedBatches++;
      this.droppedEvents += old.events;
      if (old.kind !== 'depth') this.dropsSince.set(old.session, (this.dropsSince.get(old.session) ?? 0) + 1);
      dropped++;
    }
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    return dropped;
  }

  /** The oldest waiting batch, now being sent; null when none waits or one is being sent already. */
  next(): OutboxItem | null {
    if (this.sending || this.head >= this.items.length) return null;
    const item = this.items[this.head]!;
    this.items[this.head] = undefined as unknown as OutboxItem;
    this.head++;
    this.size -= item.data.length;
    this.sending = item;
    return item;
  }

  /** Whether `item` still waits (or is being sent). */
  has(item: OutboxItem): boolean {
    return this.sending === item || this.items.indexOf(item, this.head) >= 0;
  }

  /** Batches of `session` dropped since its last batch went out: said with the next one. */
  droppedBefore(session: string): number {
    return this.dropsSince.get(session) ?? 0;
  }

  /** The batch being sent went out (true), or must be tried again first (false). */
  done(sent: boolean): void {
    const item = this.sending;
    this.sending = null;
    if (!item) return;
    if (sent) {
      if (item.kind !== 'depth') this.dropsSince.delete(item.session);
      return;
    }
    // Back to the front: order is kept, and it counts against the bounds again.
    this.head--;
    if (this.head >= 0) {
      this.items[this.head] = item;
    } else {
      this.head = 0;
      this.items.unshift(item);
    }
    this.size += item.data.length;
  }
}
