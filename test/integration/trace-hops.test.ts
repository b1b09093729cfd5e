/**
 * `--hops LIST` (trace, record, stats): which hop kinds are attached. Bad lists are refused before
 * anything touches the kernel; on a real lab (root) a trace with xmit,recv,drop shows a pod → pod
 * packet as its four device hops, delivered by the model's judgement, and stats joins its
 * segments across the hops that remain.
 */
import { describe, it, expect } from 'vitest';
import { sendUdp } from '../../server/lab/traffic.js';
import { ECHO } from '../../server/lab/rounds.js';
import type { Packet } from '../../shared/packet.js';
import { useLabWithServers } from '../helpers/lab-with-servers.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { cli, startReady, startTrace } from '../helpers/cli.js';

describe('--hops validation', () => {
  it.each([
    ['trace', 'foo', /--hops takes hop kinds separated by commas, from xmit, rx, recv, drop, consume; got 'foo'/],
    ['stats', 'xmit,bogus', /--hops takes hop kinds .* got 'xmit,bogus'/],
    ['record', 'drop,consume', /--hops needs xmit or recv/],
  ])('should refuse `%s --hops %s` with exit 2 and say what it takes', async (cmd, list, message) => {
    const args = cmd === 'record' ? ['record', '-o', '/nonexistent/x.hoptrace', '--hops', list] : [cmd, '--hops', list, '--duration', '1'];
    const r = await cli(args);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(message);
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
  });

  it('should document --hops in each command\'s help', async () => {
    for (const cmd of ['trace', 'record', 'stats']) {
      const r = await cli([cmd, '--help']);
      expect(String(r.stdout)).toMatch(/--hops LIST\s+hop kinds to attach \(default all: xmit,rx,recv,drop,consume\)/);
    }
  });
});

describe.skipIf(!isRoot)(`--hops on a real lab (${NEEDS_ROOT})`, () => {
  const demo = useLabWithServers('hk');

  it('should show a pod → pod packet as its transmit and receive hops only, delivered by the model', async () => {
    const { child } = await startTrace(['--json', '--hops', 'xmit,recv,drop', '--filter', `udp and dst port ${ECHO.podUdp}`]);
    const sent = await sendUdp(demo.lab.ns.pod1, demo.lab.addr.pod2, ECHO.podUdp, 3, 32, 20);
    expect(sent.replies).toBe(3);
    // Without consume probes a packet completes when its skb goes quiet: give it time.
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet)
      .filter((p) => p.hops.every((h) => demo.roles.has(h.netns)) && p.dst === demo.lab.addr.pod2);
    expect(packets).toHaveLength(3);
    for (const p of packets) {
      expect(p.hops.map((h) => `${demo.roles.get(h.netns)}/${h.ifname}/${h.event}`)).toEqual([
        'pod1/eth0/xmit', 'node/veth-pod1/recv', 'node/veth-pod2/xmit', 'pod2/eth0/recv',
      ]);
      expect(p.fate).toBe('delivered');
    }
  });

  it('should join stats segments across the hops that remain', async () => {
    const port = ECHO.podUdp;
    const { child } = await startReady(['stats', '--json', '--hops', 'xmit,recv', '--filter', `udp and dst port ${port}`]);
    await sendUdp(demo.lab.ns.pod1, demo.lab.addr.pod2, port, 20, 32, 5);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const r = await child;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const doc = JSON.parse(String(r.stdout).trim().split('\n').pop() ?? '{}') as { segments: Array<{ from: { ns: string; ifname: string; event: string }; to: { ns: string; ifname: string; event: string }; count: number }> };
    const mine = doc.segments.filter((s) => s.from.ns.startsWith(demo.lab.ns.node.replace(/-node$/, '')));
    const events = new Set(mine.flatMap((s) => [s.from.event, s.to.event]));
    expect([...events].sort()).toEqual(['recv', 'xmit']);
    const crossing = mine.find((s) => s.from.ns === demo.lab.ns.pod1 && s.from.event === 'xmit' && s.to.ns === demo.lab.ns.node && s.to.ifname === 'veth-pod1');
    expect(crossing?.to.event).toBe('recv');
    expect(crossing?.count).toBeGreaterThanOrEqual(20);
  });
});
