import { describe, expect, it } from 'vitest';
import { IngestCore } from '../../src/worker/ingest-core.js';
import { reconstructAll } from '../../../shared/reconstruct.js';
import { encodeBatch } from '../../../shared/wire.js';
import { batches, demoNetns, demoRecording } from '../fixture.js';
import { PathExpectations } from '../../../shared/expectation.js';

function core(historyMax?: number): { c: IngestCore; clock: { t: number } } {
  const clock = { t: 0 };
  const c = new IngestCore({ historyMax, now: () => clock.t, wallNow: () => 1_700_000_000_000 + clock.t });
  const rec = demoRecording();
  c.setTopology([...rec.names], []);
  c.setDropReasons([...rec.header.dropReasons]);
  return { c, clock };
}

function ingestAll(c: IngestCore, size = 64): void {
  for (const b of batches(demoRecording().events, size)) c.ingestBatch(b);
  c.flush();
}

describe('IngestCore', () => {
  it('should rebuild the same packets as the shared engine from protobuf batches', () => {
    const { c } = core();
    ingestAll(c);
    const out = c.takeRows();
    const rec = demoRecording();
    const expected = reconstructAll(rec.events, { nsName: (n) => rec.names.get(n) ?? null });
    expect(out?.reset).toBe(true);
    expect(out?.rows.map((r) => r.id).sort()).toEqual(expected.map((p) => p.id).sort());
    const stats = c.stats();
    expect(stats.events).toBe(rec.events.length);
    expect(stats.decodeErrors).toBe(0);
    expect(stats.seqGaps).toBe(0);
  });

  it('should fold a packet into a row with its namespace path, NAT and drop reason', () => {
    const { c } = core();
    ingestAll(c);
    const rows = c.takeRows()?.rows ?? [];
    const dropped = rows.find((r) => r.fate === 'dropped' && r.dport === 9999);
    expect(dropped?.dropReason).toBe('NETFILTER_DROP');
    expect(dropped?.path).toEqual([demoNetns('pod1'), demoNetns('node')]);
    const dnat = rows.find((r) => r.nat === 'dnat' && r.path[0] === demoNetns('ext'));
    expect(dnat?.path).toEqual([demoNetns('ext'), demoNetns('node'), demoNetns('pod2')]);
    expect(dnat?.pathNames).toEqual(['demo-ext', 'demo-node', 'demo-pod2']);
    expect(dnat && dnat.latencyNs).toBeGreaterThan(0);
  });

  it('should re-filter the history when the filter changes, and bring packets back when it widens', () => {
    const { c } = core();
    ingestAll(c);
    const all = c.takeRows()?.rows.length ?? 0;
    expect(c.setFilter('udp and port 9999', null)).toBeNull();
    const narrow = c.takeRows();
    expect(narrow?.reset).toBe(true);
    expect(narrow?.rows.length).toBeGreaterThan(0);
    expect(narrow?.rows.every((r) => r.proto === 'udp' && r.dport === 9999)).toBe(true);
    expect(c.setFilter('', null)).toBeNull();
    expect(c.takeRows()?.rows.length).toBe(all);
  });

  it('should match a NATed packet by its rewritten address too (any hop matches)', () => {
    const { c } = core();
    ingestAll(c);
    c.takeRows();
    // pod2's address appears only after the node's DNAT rewrote ext→node:8080.
    c.setFilter('host 10.244.1.12 and tcp port 80', null);
    const rows = c.takeRows()?.rows ?? [];
    expect(rows.some((r) => r.dst === '10.99.0.1' && r.dport === 8080)).toBe(true);
  });

  it('should report a bad filter with the caret rendering and keep the old one', () => {
    const { c } = core();
    ingestAll(c);
    c.setFilter('udp', null);
    c.takeRows();
    const problem = c.setFilter('udp and port', null);
    expect(problem?.message).toMatch(/port/);
    expect(problem?.formatted.split('\n')[1]).toMatch(/^\s+\^/);
    expect(c.filter).toBe('udp');
    expect(c.takeRows()).toBeNull();
  });

  it('should narrow to packets touching a namespace or a link when a facet is set', () => {
    const { c } = core();
    ingestAll(c);
    c.takeRows();
    c.setFilter('', { kind: 'ns', netns: demoNetns('ext') });
    const rows = c.takeRows()?.rows ?? [];
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.path.includes(demoNetns('ext')))).toBe(true);
    const topo = demoRecording().topology;
    const ext = topo?.namespaces.find((n) => n.netns === demoNetns('ext'))?.interfaces.find((i) => i.name === 'eth0');
    expect(ext?.peer).toBeTruthy();
    c.setFilter('', { kind: 'link', a: { netns: demoNetns('ext'), ifindex: ext?.ifindex ?? 0 }, b: { netns: ext?.peer?.netns ?? 0, ifindex: ext?.peer?.ifindex ?? 0 } });
    expect(c.takeRows()?.rows.map((r) => r.id).sort()).toEqual(rows.map((r) => r.id).sort());
  });

  it('should hold rows while paused and hand them over on resume', () => {
    const { c } = core();
    c.takeRows();
    c.setPaused(true);
    ingestAll(c);
    expect(c.takeRows()).toBeNull();
    expect(c.stats().pending).toBeGreaterThan(0);
    c.setPaused(false);
    const out = c.takeRows();
    expect(out?.reset).toBe(false);
    expect(out?.rows.length).toBe(c.stats().shown);
  });

  it('should count batches missing from the sequence and undecodable bytes', () => {
    const { c } = core();
    const b = batches(demoRecording().events.slice(0, 40), 10);
    c.ingestBatch(b[0] as Uint8Array);
    c.ingestBatch(b[3] as Uint8Array);
    c.ingestBatch(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]));
    c.ingestBatch(encodeBatch({ events: [], seq: 4, lostKernel: 7 }));
    const s = c.stats();
    expect(s.seqGaps).toBe(2);
    expect(s.decodeErrors).toBe(1);
    expect(s.lastDecodeError).toMatch(/hop batch/);
    expect(s.lostKernel).toBe(7);
  });

  it('should evict the oldest packets past the history size, and say when asked for one', () => {
    const { c } = core(20);
    ingestAll(c);
    const rows = c.takeRows()?.rows ?? [];
    expect(rows.length).toBe(20);
    expect(c.stats().history).toBe(20);
    const kept = rows[rows.length - 1];
    expect(c.get(kept?.id ?? '')?.packet.id).toBe(kept?.id);
    const total = c.stats().packets;
    expect(total).toBeGreaterThan(20);
    expect(c.get('no-such-packet')).toBeNull();
  });

  it('should finish idle packets as wall time passes without events', () => {
    const { c, clock } = core();
    const events = demoRecording().events.slice(0, 60);
    for (const b of batches(events, 60)) c.ingestBatch(b);
    const before = c.stats().packets;
    clock.t += 5000;
    c.tick();
    expect(c.stats().packets).toBeGreaterThan(before);
    expect(c.stats().live).toBe(0);
  });

  it('should measure packets per second per interface and drops per place', () => {
    const { c, clock } = core();
    ingestAll(c);
    clock.t += 1000;
    const s = c.stats();
    expect(s.ifaceRates.length).toBeGreaterThan(0);
    expect(s.ifaceRates.every(([, , pps]) => pps > 0)).toBe(true);
    const fwd = s.drops.find(([netns, , reason]) => netns === demoNetns('node') && reason === 'NETFILTER_DROP');
    expect(fwd?.[3]).toBeGreaterThan(0);
    expect(s.clockOffsetMs).not.toBeNull();
  });

  it('should take packets back by id: rows not sent yet are dropped, sent ones listed as removed, counts follow', () => {
    const { c } = core();
    const rec = demoRecording();
    const packets = reconstructAll(rec.fileEvents, { nsName: (n) => rec.names.get(n) ?? null }).sort((a, b) => (a.hops[0]?.t ?? 0) - (b.hops[0]?.t ?? 0));
    const dropped = packets.filter((p) => p.fate === 'dropped');
    expect(dropped.length).toBeGreaterThan(1);
    c.ingestPackets(packets.slice(0, 50), 300);
    expect(c.takeRows()?.rows).toHaveLength(50);
    c.ingestPackets(packets.slice(50, 60), 40);
    const drops = (): number => c.stats().drops.reduce((a, d) => a + d[3], 0);
    const dropsBefore = drops();
    // Two sent earlier, two still pending.
    const gone = [packets[10], packets[20], packets[55], packets[58]].map((p) => p?.id ?? '');
    const goneDrops = [packets[10], packets[20], packets[55], packets[58]].filter((p) => p?.fate === 'dropped').length;
    c.remove(new Set(gone));
    const out = c.takeRows();
    expect(out?.reset).toBe(false);
    expect(out?.removed.sort()).toEqual([gone[0], gone[1]].sort());
    expect(out?.rows.map((r) => r.id)).toEqual(packets.slice(50, 60).map((p) => p.id).filter((id) => !gone.includes(id)));
    const s = c.stats();
    expect(s.packets).toBe(56);
    expect(s.shown).toBe(56);
    expect(s.history).toBe(56);
    expect(s.events).toBe(340);
    expect(drops()).toBe(dropsBefore - goneDrops);
    for (const id of gone) expect(c.get(id)).toBeNull();
    // The history stays in order: a wider reset lists exactly the rest.
    c.setFilter('', null);
    expect(c.takeRows()?.rows.map((r) => r.id).sort()).toEqual(packets.slice(0, 60).map((p) => p.id).filter((id) => !gone.includes(id)).sort());
  });

  it('should show a delivered packet its socket then freed as delivered with the discard, and count no drop for it (issue 19)', () => {
    const clock = { t: 0 };
    const c = new IngestCore({ now: () => clock.t, wallNow: () => 1_700_000_000_000 });
    const pod2 = 4026532315;
    c.setTopology([[pod2, 'demo-pod2']], [[pod2, '10.244.1.12']]);
    c.setDropReasons([[2, 'NOT_SPECIFIED'], [3, 'NO_SOCKET']]);
    const base = { cpu: 0, netns: pod2, ifindex: 2, ifname: 'eth0', family: 4 as const, proto: 6, len: 52, src: '10.99.0.2', dst: '10.244.1.12', sport: 55416, dport: 80, icmpType: 0, icmpId: 0, tcpFlags: 16, tcpSeq: 9, reason: 0 };
    // A pure ACK taken in by pod2 and freed by TCP; then a SYN to a closed port (NO_SOCKET).
    const events = [
      { ...base, kind: 'recv' as const, t: 1_000_000, skb: 'a1', ipId: 1 },
      { ...base, kind: 'drop' as const, t: 1_010_000, skb: 'a1', ipId: 1, ifindex: 0, ifname: '', reason: 2 },
      { ...base, kind: 'recv' as const, t: 1_020_000, skb: 'b1', ipId: 2, dport: 81, tcpFlags: 2 },
      { ...base, kind: 'drop' as const, t: 1_030_000, skb: 'b1', ipId: 2, dport: 81, tcpFlags: 2, ifindex: 0, ifname: '', reason: 3 },
    ];
    c.ingestBatch(encodeBatch({ events, seq: 1, lostKernel: 0 }));
    c.flush();
    const rows = c.takeRows()?.rows ?? [];
    const ack = rows.find((r) => r.dport === 80);
    expect(ack).toMatchObject({ fate: 'delivered', dropReason: null, fateDetail: 'delivered; discarded by TCP: NOT_SPECIFIED' });
    expect(rows.find((r) => r.dport === 81)).toMatchObject({ fate: 'dropped', dropReason: 'NO_SOCKET' });
    expect(c.stats().drops.map((d) => d[2])).toEqual(['NO_SOCKET']);
    expect(c.stats().splits).toBe(0);
  });

  it('should say whether a packet passes the filter and facet', () => {
    const { c } = core();
    const rec = demoRecording();
    const packets = reconstructAll(rec.fileEvents, { nsName: (n) => rec.names.get(n) ?? null });
    c.setFilter('udp and port 9999', { kind: 'ns', netns: demoNetns('node') });
    const pass = packets.filter((p) => c.passes(p));
    expect(pass.length).toBeGreaterThan(0);
    expect(pass.every((p) => p.proto === 'udp' && p.dport === 9999)).toBe(true);
    c.setFilter('udp and port 9999', { kind: 'ns', netns: demoNetns('pod2') });
    expect(packets.filter((p) => c.passes(p))).toHaveLength(0);
  });

  it('should leave out packets the live session\'s own filter rejects, as the service\'s /packets does', () => {
    const { c } = core();
    c.setSessionFilter('udp port 9999');
    ingestAll(c);
    const rows = c.takeRows()?.rows ?? [];
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.proto === 'udp' && (r.dport === 9999 || r.sport === 9999))).toBe(true);
    // '' (an unfiltered session) and a filter this page cannot parse leave every packet in.
    for (const text of ['', 'port (']) {
      const other = core().c;
      other.setSessionFilter(text);
      ingestAll(other);
      expect(other.takeRows()?.rows.length).toBeGreaterThan(rows.length);
    }
  });

  describe('with the model', () => {
    function annotatedCore(): IngestCore {
      const { c } = core();
      const topo = demoRecording().topology;
      if (!topo) throw new Error('fixture without topology');
      c.setModel(topo);
      ingestAll(c);
      return c;
    }
    const packetsOf = (c: IngestCore) => (c.takeRows()?.rows ?? []).map((r) => c.get(r.id)?.packet);

    it('should put every packet it rebuilds next to the model, as shared/expectation.ts does in the same order', () => {
      const c = annotatedCore();
      const rec = demoRecording();
      const topo = rec.topology;
      if (!topo) throw new Error('fixture without topology');
      // The same stream through the one expectation engine, packet by packet.
      const ref = new PathExpectations(topo);
      const byId = new Map(reconstructAll(rec.events, { nsName: (n) => rec.names.get(n) ?? null, dropReason: (x) => rec.header.dropReasons.get(x) ?? `reason-${x}` })
        .map((p) => [p.id, p]));
      const seen = packetsOf(c);
      expect(seen.length).toBeGreaterThan(10);
      for (const p of seen) {
        if (!p) throw new Error('row without packet');
        expect(p).toHaveProperty('expected');
      }
      // Annotating in the core's order gives what the core holds.
      const order = [...seen].sort((a, b) => (c.get(a?.id ?? '')?.n ?? 0) - (c.get(b?.id ?? '')?.n ?? 0));
      for (const p of order) {
        const mine = byId.get(p?.id ?? '');
        if (!mine || !p) throw new Error(`packet ${p?.id} not rebuilt by the shared engine`);
        const want = ref.annotate(mine);
        expect({ id: p.id, expected: p.expected, divergence: p.divergence }).toEqual({ id: p.id, expected: want.expected, divergence: want.divergence });
      }
    });

    it('should keep the MASQUERADE reply on its path and give a clone no path of its own', () => {
      const c = annotatedCore();
      const all = packetsOf(c);
      const replies = all.filter((p) => p?.hops[0]?.netns === demoNetns('ext') && p.sport === 7000 && p.hops.some((h) => h.nat));
      expect(replies.length).toBeGreaterThan(0);
      for (const p of replies) {
        expect(p?.expected).not.toBeNull();
        expect(p?.divergence).toBeNull();
      }
      for (const p of all.filter((x) => x?.cloneOf !== null)) expect(p?.expected).toBeNull();
    });

    it('should annotate nothing without a model', () => {
      const { c } = core();
      ingestAll(c);
      for (const p of packetsOf(c)) expect(p).not.toHaveProperty('expected');
    });
  });
});
