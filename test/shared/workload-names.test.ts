/** Workload names on packets: added beside `ns` from a table (live model or a recording's), shown first in human output. */
import { describe, expect, it } from 'vitest';
import { withWorkloads, workloadTableOf } from '../../shared/workload-names.js';
import { formatPacket, nsLabel } from '../../shared/format.js';
import type { Hop, Packet } from '../../shared/packet.js';

const hop = (netns: number, ns: string, event: Hop['event'] = 'xmit'): Hop => ({
  t: 1000 * netns, event, netns, ns, ifname: 'eth0', ifindex: 2, src: '10.213.5.3', dst: '10.213.5.2', sport: 40000, dport: 80,
  cpu: 0, len: 60, ipId: 1, tcpFlags: 2, tcpSeq: 1, icmpType: 0, icmpId: 0, nat: null,
});
const packet = (hops: Hop[], drop: Packet['drop'] = null): Packet => ({
  id: 'p1', proto: 'tcp', family: 4, src: '10.213.5.3', dst: '10.213.5.2', sport: 40000, dport: 80,
  fate: drop ? 'dropped' : 'delivered', fateBy: drop ? 'drop' : 'local-address', drop, hops, cloneOf: null,
});

describe('workload names on packets', () => {
  const model = { namespaces: [
    { netns: 1, name: 'host', workload: null },
    { netns: 2, name: 'netns-55c52e9d-e193-ce2e-b2cc-8ff208091d86', workload: 'web' },
    { netns: 3, name: 'netns-2fc54723-41d0-35b7-60ba-507ef1570d2c', workload: 'shop' },
    { netns: 'bad' }, null, 7,
  ] };

  it('should read the table from a model, skipping what is not a named namespace', () => {
    expect([...workloadTableOf(model)]).toEqual([[2, 'web'], [3, 'shop']]);
    expect(workloadTableOf(null).size).toBe(0);
    expect(workloadTableOf({ namespaces: 'x' }).size).toBe(0);
  });

  it('should add workload to hops and drop in named namespaces only, keeping ns', () => {
    const p = packet([hop(3, 'netns-2fc54723-41d0-35b7-60ba-507ef1570d2c'), hop(1, 'host', 'recv'), hop(2, 'netns-55c52e9d-e193-ce2e-b2cc-8ff208091d86', 'rx')], { reason: 'NETFILTER_DROP', ns: 'netns-55c52e9d-e193-ce2e-b2cc-8ff208091d86', netns: 2, ifname: 'eth0' });
    const named = withWorkloads(p, workloadTableOf(model));
    expect(named.hops.map((h) => [h.ns?.slice(0, 5), h.workload])).toEqual([['netns', 'shop'], ['host', undefined], ['netns', 'web']]);
    expect(named.drop?.workload).toBe('web');
    expect(JSON.parse(JSON.stringify(named)).hops[1]).not.toHaveProperty('workload');
    // Nothing to name: the very same packet.
    const plain = packet([hop(1, 'host')]);
    expect(withWorkloads(plain, workloadTableOf(model))).toBe(plain);
  });

  it('should show the workload first, with a shortened runtime netns name, in human output', () => {
    expect(nsLabel({ ns: 'netns-55c52e9d-e193-ce2e-b2cc-8ff208091d86', netns: 2, workload: 'web' })).toBe('web (netns-55c52e9d…)');
    expect(nsLabel({ ns: 'lab-pod1', netns: 2, workload: 'web' })).toBe('web (lab-pod1)');
    expect(nsLabel({ ns: null, netns: 9 })).toBe('netns:9');
    const text = formatPacket(withWorkloads(packet([hop(3, 'netns-2fc54723-41d0-35b7-60ba-507ef1570d2c'), hop(2, 'netns-55c52e9d-e193-ce2e-b2cc-8ff208091d86', 'drop')], { reason: 'NETFILTER_DROP', ns: 'netns-55c52e9d-e193-ce2e-b2cc-8ff208091d86', netns: 2, ifname: 'eth0' }), workloadTableOf(model)));
    expect(text).toContain('  shop (netns-2fc54723…)  eth0');
    expect(text).toContain('dropped in web (netns-55c52e9d…) at eth0: NETFILTER_DROP');
  });
});
