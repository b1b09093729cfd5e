/** The human forms: the topology as a tree per namespace, an expected path laid out like a trace. */
import { describe, expect, it } from 'vitest';
import { formatPath, formatTopology } from '../../shared/topology/format.js';
import { simulatePath } from '../../shared/topology/simulate.js';
import { podLab } from './builder.js';

const MASQ = `*nat
:POSTROUTING ACCEPT [0:0]
-A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE
COMMIT
*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -p udp -m udp --dport 9999 -j DROP
COMMIT
`;

describe('formatTopology', () => {
  it('should draw each namespace as a tree: bridge ports under their bridge, veth peers across namespaces, routes and rules', () => {
    const text = formatTopology(podLab().iptables('node', MASQ).build());
    const node = text.split('\n\n').find((b) => b.startsWith('node '));
    expect(node?.split('\n')).toEqual([
      expect.stringMatching(/^node {2}\(netns \d+; forwarding ipv4 on, ipv6 on\)$/),
      '├─ lo (#1, loopback, up, mtu 1500)  127.0.0.1/8 ::1/128',
      '├─ br0 (#2, bridge, up, mtu 1500)  10.244.1.1/24 fd00:244:1::1/64',
      '│  ├─ port veth-pod1 (#3, veth, up, mtu 1500)  <-> pod1:eth0 #2',
      '│  └─ port veth-pod2 (#4, veth, up, mtu 1500)  <-> pod2:eth0 #2',
      '└─ eth-node (#5, veth, up, mtu 1500)  10.99.0.1/24  <-> ext:eth0 #2',
      '   route 10.244.1.0/24 dev br0',
      '   route fd00:244:1::/64 dev br0',
      '   route 10.99.0.0/24 dev eth-node',
      '   netfilter ip nat POSTROUTING: -A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE',
      '   netfilter ip filter FORWARD: -A FORWARD -p udp -m udp --dport 9999 -j DROP',
    ]);
    expect(text).toMatch(/4 namespaces, discovered in 0 ms$/);
  });
});

describe('formatPath', () => {
  it('should read like a traced packet: one line per hop with its tuple, rewrites marked, the rules under their hop', () => {
    const t = podLab().iptables('node', MASQ).build();
    const lines = formatPath(simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 4000, dport: 53 })).split('\n');
    expect(lines[0]).toBe('expected  udp 10.244.1.11:4000 → 10.99.0.2:53  sent from pod1  delivered  (5 hops)');
    expect(lines.slice(1, 7)).toEqual([
      '  pod1  eth0       xmit  10.244.1.11:4000 → 10.99.0.2:53',
      '  node  veth-pod1  recv  10.244.1.11:4000 → 10.99.0.2:53',
      '  node  br0        recv  10.244.1.11:4000 → 10.99.0.2:53',
      '  node  eth-node   xmit  10.99.0.1:4000 → 10.99.0.2:53    SNAT, was 10.244.1.11:4000 → 10.99.0.2:53',
      '    ↳ POSTROUTING nat POSTROUTING: masquerade to 10.99.0.1  [-A POSTROUTING -s 10.244.1.0/24 -o eth-node -j MASQUERADE]',
      '  ext   eth0       recv  10.99.0.1:4000 → 10.99.0.2:53',
    ]);
    expect(lines[7]).toBe('  delivered: 10.99.0.2 is local to ext');
  });

  it('should end a dropped path with the drop, its rule and where, and mark guesses', () => {
    const t = podLab().iptables('node', MASQ).build();
    const text = formatPath(simulatePath(t, { from: 'pod1', dst: '10.99.0.2', proto: 'udp', sport: 1, dport: 9999 }));
    expect(text).toContain('  node  br0        drop  10.244.1.11:1 → 10.99.0.2:9999  ✗ NETFILTER_DROP');
    expect(text).toContain('    ↳ FORWARD filter FORWARD: drop  [-A FORWARD -p udp -m udp --dport 9999 -j DROP]');
    expect(text).toContain('  dropped: drop in FORWARD (filter FORWARD): -A FORWARD -p udp -m udp --dport 9999 -j DROP (in node at br0, kernel reason NETFILTER_DROP)');
    const guessed = formatPath(simulatePath(podLab().iptables('node', `*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -m length --length 0:100 -j DROP
COMMIT
`).build(), { from: 'pod1', dst: '10.99.0.2', proto: 'udp', dport: 7 }));
    expect(guessed.split('\n')[0]).toContain('(5 hops, with guesses)');
    expect(guessed).toContain('    ? FORWARD ip filter FORWARD: rule "-A FORWARD -m length --length 0:100 -j DROP" uses -m length --length 0:100');
  });
});
