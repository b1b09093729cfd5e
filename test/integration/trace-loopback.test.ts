/**
 * The tracer's own namespace's loopback is traced (a localhost connection is a common question),
 * and only the service's own connections are left out there, by its port (probes/emit.bt,
 * SELF_PORTS): `trace --json` shows a host-local TCP connection's hops on lo, on their expected
 * path; the program a service builds leaves its port out, in raw form, and nothing else.
 */
import { createServer, connect, type Server } from 'node:net';
import { statSync } from 'node:fs';
import { describe, it, expect } from 'vitest';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';
import { buildHopProgram } from '../../probes/assemble.js';
import { portToRaw } from '../../shared/filter/raw.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace } from '../helpers/cli.js';

type Annotated = Packet & PacketExpectation;

describe('loopback in the probes', () => {
  it('should leave out only the given ports on our own loopback, compared raw', () => {
    const self = buildHopProgram({ filterExpr: '1', selfNetns: 4026531840, reasonNotSpecified: 2, selfPorts: [7070] });
    const raw = portToRaw(7070);
    expect(self).toContain(`$netns == 4026531840 && $ifindex == 1 && ($sp == ${raw} || $dp == ${raw})`);
    const none = buildHopProgram({ filterExpr: '1', selfNetns: 4026531840, reasonNotSpecified: 2 });
    expect(none).toContain('$netns == 4026531840 && $ifindex == 1 && (0)');
    expect(() => buildHopProgram({ filterExpr: '1', selfNetns: 1, reasonNotSpecified: 2, selfPorts: [70000] })).toThrow(/ports 1-65535/);
  });
});

describe.skipIf(!isRoot)(`a localhost connection traced on the host's loopback (${NEEDS_ROOT})`, () => {
  it('should show its hops on lo, on their expected path', async () => {
    const port = 19100 + Math.floor(Math.random() * 800);
    const server: Server = createServer((s) => s.on('data', (d) => s.end(d)));
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    try {
      const { child } = await startTrace(['--json', '--filter', `tcp port ${port}`]);
      try {
        await new Promise<void>((resolve, reject) => {
          const c = connect(port, '127.0.0.1', () => c.write('hello'));
          c.on('data', () => c.end());
          c.on('close', () => resolve());
          c.on('error', reject);
        });
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        child.kill('SIGINT');
      }
      const r = await child;
      expect(r.exitCode, String(r.stderr)).toBe(0);
      const host = statSync('/proc/self/ns/net').ino;
      const packets = String(r.stdout).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Annotated | { type: string })
        .filter((p): p is Annotated => 'id' in p && p.proto === 'tcp' && (p.sport === port || p.dport === port) && p.hops.every((h) => h.netns === host));
      // Handshake, data both ways, teardown.
      expect(packets.length).toBeGreaterThanOrEqual(6);
      for (const p of packets) {
        // rx: loopback delivers through the backlog too (netif_rx), as a veth does.
        expect(p.hops.filter((h) => h.event !== 'consume' && h.event !== 'drop' && h.event !== 'rx').map((h) => `${h.ifname}/${h.event}`)).toEqual(['lo/xmit', 'lo/recv']);
        expect(p.divergence, p.divergence?.summary).toBeNull();
        expect(p.expected?.fate).toBe('delivered');
      }
    } finally {
      server.close();
    }
  }, 120_000);
});
