import { describe, expect, it } from 'vitest';
import { Outbox } from '../../../shared/cluster/outbox.js';

const item = (seq: number, bytes = 10, session = 'hub') => ({ session, seq, data: new Uint8Array(bytes), events: 2 });

describe('agent outbox', () => {
  it('gives batches in order, and one again when its send failed', () => {
    const o = new Outbox();
    for (const s of [1, 2, 3]) o.add(item(s));
    const a = o.next();
    expect(a?.seq).toBe(1);
    expect(o.next()).toBeNull(); // one at a time
    o.done(false);
    expect(o.next()?.seq).toBe(1);
    o.done(true);
    expect(o.next()?.seq).toBe(2);
    o.done(true);
    expect(o.next()?.seq).toBe(3);
    o.done(true);
    expect(o.next()).toBeNull();
    expect(o.length).toBe(0);
  });

  it('drops the oldest waiting batches past the count or the bytes, counts them, and says so with the session\'s next batch', () => {
    const o = new Outbox({ maxBatches: 3, maxBytes: 1000 });
    for (let s = 1; s <= 5; s++) o.add(item(s));
    expect(o.length).toBe(3);
    expect(o.droppedBatches).toBe(2);
    expect(o.droppedEvents).toBe(4);
    expect(o.droppedBefore('hub')).toBe(2);
    expect(o.next()?.seq).toBe(3);
    // The batch being sent is never dropped under it: bytes push out the waiting ones.
    o.add(item(6, 985));
    expect(o.droppedBatches).toBe(4);
    expect(o.bytes).toBe(995);
    o.done(false);
    expect(o.next()?.seq).toBe(3);
    o.done(true);
    expect(o.droppedBefore('hub')).toBe(0);
    expect(o.next()?.seq).toBe(6);
    o.done(true);
    // A batch bigger than the bound alone is dropped at once.
    o.add(item(7, 2000));
    expect(o.length).toBe(0);
    expect(o.droppedBatches).toBe(5);
  });

  it('counts drops per session', () => {
    const o = new Outbox({ maxBatches: 1 });
    o.add(item(1, 10, 'a'));
    o.add(item(1, 10, 'b'));
    o.add(item(2, 10, 'b'));
    expect([o.droppedBefore('a'), o.droppedBefore('b')]).toEqual([1, 1]);
  });

  it('keeps depth batches in order with the hop batches, and does not count their drops as the hops sequence\'s', () => {
    const o = new Outbox({ maxBatches: 2 });
    o.add({ ...item(1), kind: 'depth' });
    o.add(item(1));
    o.add(item(2)); // the depth batch goes
    expect(o.droppedBatches).toBe(1);
    expect(o.droppedBefore('hub')).toBe(0);
    o.add({ ...item(2), kind: 'depth' }); // hop batch 1 goes
    expect(o.droppedBefore('hub')).toBe(1);
    expect(o.next()).toMatchObject({ seq: 2 });
    o.done(true);
    expect(o.droppedBefore('hub')).toBe(0);
    // A depth batch going out does not clear what the next hop batch must say.
    const p = new Outbox({ maxBatches: 2 });
    p.add(item(1));
    p.add({ ...item(1), kind: 'depth' });
    p.add(item(2)); // hop batch 1 goes
    expect(p.next()).toMatchObject({ seq: 1, kind: 'depth' });
    p.done(true);
    expect(p.droppedBefore('hub')).toBe(1);
    expect(p.next()).toMatchObject({ seq: 2 });
    p.done(true);
    expect(p.droppedBefore('hub')).toBe(0);
  });

  it('never drops a batch for a heartbeat, and drops a waiting heartbeat without counting it', () => {
    const beat = (seq: number) => ({ session: 'hub', kind: 'heartbeat' as const, seq, data: new Uint8Array(4), events: 0 });
    const o = new Outbox({ maxBatches: 2 });
    o.add(item(1));
    o.add(item(2));
    expect(o.add(beat(1))).toBe(0);
    expect(o.length).toBe(2);
    expect(o.droppedBatches).toBe(0);
    const b = beat(2);
    const full = new Outbox({ maxBatches: 2 });
    full.add(item(1));
    full.add(b);
    expect(full.has(b)).toBe(true);
    // A batch pushes the heartbeat's turn on: the oldest (the batch) goes first, then the heartbeat, uncounted.
    full.add(item(2));
    full.add(item(3));
    expect(full.has(b)).toBe(false);
    expect([full.droppedBatches, full.droppedEvents, full.droppedBefore('hub')]).toEqual([1, 2, 1]);
  });
});
