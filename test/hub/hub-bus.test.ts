/**
 * The hub against a real nats-server (JetStream, store in a temp folder, free port): bad
 * messages on the bus are counted, dropped and logged once per source, and never stop the hub
 * from taking good ones; NATS credentials (user/password, token, nkey) are passed through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { createUser } from '@nats-io/nkeys';
import { hasNatsServer, NEEDS_NATS, startNatsServer, type NatsServer } from '../helpers/nats.js';
import { until } from '../helpers/hub.js';
import { Hub } from '../../server/hub/hub.js';
import { connectBus, ensureStream, BusConfigError } from '../../server/hub/connect.js';
import { encodeBatch } from '../../shared/wire.js';
import type { HopEvent } from '../../shared/hop-event.js';
import type { Topology } from '../../shared/topology/model.js';

const enc = new TextEncoder();

function hopEvent(t: number, kind: HopEvent['kind'], netns: number): HopEvent {
  return {
    kind, t, cpu: 0, skb: 'ffff1', netns, ifindex: 2, ifname: 'eth0', family: 4, proto: 17, len: 60, ipId: 9,
    src: '10.168.1.10', dst: '10.168.2.10', sport: 4000, dport: 5000, icmpType: 0, icmpId: 0, tcpFlags: 0, tcpSeq: 0, reason: 0,
  };
}

const topology: Topology = { namespaces: [], errors: [], discoveredAt: 0, durationMs: 0 };

describe.skipIf(!hasNatsServer)(`hub on the bus (${hasNatsServer ? 'nats-server' : NEEDS_NATS})`, () => {
  let nats: NatsServer;
  beforeAll(async () => { nats = await startNatsServer(); });
  afterAll(async () => { await nats?.stop(); });

  it('counts and drops a wrong protobuf, a foreign subject and an oversize batch, logging each once per source, and keeps going', async () => {
    const logs: string[] = [];
    const hub = new Hub({ bus: { url: nats.url }, maxBatchBytes: 4096, log: (l) => logs.push(l), holdMs: 0, maxNodes: 3 });
    await hub.start();
    const nc = await connect({ servers: nats.url });
    try {
      await ensureStream(nc);
      const js = jetstream(nc);
      const h = headers();
      h.set('Hoptrace-Session', 'hub');
      // A good node first, so the bad ones come between good ones.
      await js.publish('hoptrace.good.topology', enc.encode(JSON.stringify({ node: 'good', t: 0, wallMs: 0, selector: '', topology: { ...topology, namespaces: [{ netns: 77, name: 'pod-a', interfaces: [] }] } })));
      await js.publish('hoptrace.good.hops', encodeBatch({ events: [hopEvent(1000, 'xmit', 77)], seq: 1, lostKernel: 0 }), { headers: h });
      for (let i = 0; i < 3; i++) {
        await js.publish('hoptrace.evil.hops', enc.encode('\u00ff\u00ff not protobuf at all \u0001\u0002'), { headers: h });
        await js.publish('hoptrace.bad$name.hops', encodeBatch({ events: [hopEvent(1, 'xmit', 1)], seq: 1, lostKernel: 0 }), { headers: h });
        await js.publish('hoptrace.big.hops', new Uint8Array(8192), { headers: h });
        await js.publish('hoptrace.evil.topology', enc.encode('{"node": "someone else"}'));
      }
      // Node names invented by a publisher: kept up to maxNodes (3, with good), the rest counted.
      for (let i = 0; i < 5; i++) await js.publish(`hoptrace.made-up-${i}.hops`, encodeBatch({ events: [hopEvent(1, 'xmit', 1)], seq: 1, lostKernel: 0 }), { headers: h });
      await js.publish('hoptrace.good.hops', encodeBatch({ events: [hopEvent(2000, 'consume', 77)], seq: 2, lostKernel: 3 }), { headers: h });
      await until('the last good batch', async () => (hub.nodeInfo().find((n) => n.name === 'good')?.events === 2 ? true : undefined), 10_000);
      expect(hub.bad).toMatchObject({ 'bad-protobuf': 3, 'foreign-subject': 3, oversize: 3, 'bad-snapshot': 3 });
      // One line per source and reason, not one per message.
      expect(logs.filter((l) => l.includes('hoptrace.evil.hops'))).toHaveLength(1);
      expect(logs.filter((l) => l.includes('bad$name'))).toHaveLength(1);
      expect(logs.filter((l) => l.includes('hoptrace.big.hops'))).toHaveLength(1);
      expect(logs.filter((l) => l.includes('hoptrace.evil.topology'))).toHaveLength(1);
      const good = hub.nodeInfo().find((n) => n.name === 'good')!;
      expect(good).toMatchObject({ batches: 2, lost: 3, gaps: 0, namespaces: [{ netns: 77, name: 'pod-a', node: 'good' }] });
      // Bad messages made no node ('evil', 'big'); of the invented names two fit under maxNodes.
      expect(hub.bad['too-many-nodes']).toBe(3);
      expect(hub.nodeInfo().map((n) => n.name)).toEqual(['good', 'made-up-0', 'made-up-1']);
      hub.flushAll();
      const p = hub.packets().find((x) => x.hops.some((hop) => hop.netns === 77));
      expect(p?.hops.map((x) => [x.node, x.ns])).toEqual([['good', 'pod-a'], ['good', 'pod-a']]);
    } finally {
      await nc.drain();
      await hub.stop();
    }
  });
});

describe.skipIf(!hasNatsServer)(`NATS credentials (${hasNatsServer ? 'nats-server' : NEEDS_NATS})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'h6h-creds-'));
  const user = createUser();
  const seedFile = join(dir, 'agent.nk');
  writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()), { mode: 0o600 });
  const servers: NatsServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('user/password: the right one connects, a wrong one is refused in one sentence', async () => {
    const s = await startNatsServer({ config: 'authorization { user: h6h, password: "s3cret-pw" }' });
    servers.push(s);
    const nc = await connectBus({ url: s.url, user: 'h6h', password: 's3cret-pw' });
    await nc.close();
    const bad = await connectBus({ url: s.url, user: 'h6h', password: 'wrong' }).then(() => null, (e: unknown) => e);
    expect(bad).toBeInstanceOf(BusConfigError);
    expect((bad as Error).message).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*(authorization|Authorization)/);
  });

  it('token and nkey seed file connect; mixing kinds of credentials is refused', async () => {
    const t = await startNatsServer({ config: 'authorization { token: "tok-h6h-123" }' });
    const k = await startNatsServer({ config: `authorization { users: [ { nkey: ${user.getPublicKey()} } ] }` });
    servers.push(t, k);
    await (await connectBus({ url: t.url, token: 'tok-h6h-123' })).close();
    await (await connectBus({ url: k.url, nkeyFile: seedFile })).close();
    await expect(connectBus({ url: k.url })).rejects.toThrow(/cannot connect/);
    await expect(connectBus({ url: t.url, token: 'x', user: 'a', password: 'b' })).rejects.toThrow(/one kind of NATS credentials/);
    await expect(connectBus({ url: 'http://x' })).rejects.toThrow(/nats:\/\/ or tls:\/\//);
  });
});
