/**
 * Two "nodes" on one kernel, for the many-node tests (issue 17): each node is a group of
 * namespaces — a node namespace with a bridge, and a pod namespace behind it — and the two node
 * namespaces are joined by an underlay veth, with either a VXLAN overlay between them (as
 * flannel/Calico VXLAN) or plain routes over the underlay (a routed underlay, as Calico BGP).
 * An agent per node is limited to its group with `--namespaces <prefix>-<n>-*`.
 *
 *   [P-1-pod] eth0 10.168.1.10 ─ vp0 ─ br0 10.168.1.1 [P-1-node] vx0 ═ ul0 10.168.0.1 ══
 *   ══ ul0 10.168.0.2 [P-2-node] vx0 ─ br0 10.168.2.1 ─ vp0 ─ eth0 10.168.2.10 [P-2-pod]
 *
 * More nodes (`count` 3..9, the hub benchmark's 1→4 agents): the node namespaces' ul0 ports meet
 * on a bridge in a namespace of their own (`<prefix>-ul`, a switch no agent watches); a routed
 * underlay routes each peer's pods via its underlay address, a VXLAN one is flannel-style (vx0
 * without a remote, each peer's vx0 MAC in the neighbour table and the FDB pointing at its
 * underlay address). Two nodes stay exactly as drawn above.
 *
 * Addresses are 10.168.x by default (this helper's range; `base` gives another 10.B.0.0/16 so
 * tests running side by side never share one), exist only in these namespaces and are never
 * routed out. Every command is argv to `ip` with values made here.
 */
import { execa } from 'execa';

export type ClusterUnderlay = 'vxlan' | 'routed';

export interface ClusterLab {
  readonly prefix: string;
  readonly underlay: ClusterUnderlay;
  /** Second octet of every address (10.B.x.y). */
  readonly base: number;
  readonly nodes: readonly [ClusterNode, ClusterNode, ...ClusterNode[]];
}

export interface ClusterNode {
  /** 1, 2, … */
  readonly index: number;
  /** The agent's --namespaces selector for this node. */
  readonly selector: string;
  readonly nodeNs: string;
  readonly podNs: string;
  readonly pod: string;
  readonly underlay: string;
}

/** A test file's address base: HOPTRACE_TEST_ADDRESS_BASE when set (engineers sharing a machine keep their labs apart), else the file's own. */
export function clusterBase(fallback: number): number {
  const v = process.env.HOPTRACE_TEST_ADDRESS_BASE;
  return v === undefined || v === '' ? fallback : Number(v);
}

export function clusterLabFor(prefix: string, underlay: ClusterUnderlay, base = 168, count = 2): ClusterLab {
  if (!Number.isInteger(base) || base < 1 || base > 254) throw new Error(`cluster lab base must be 1-254, got ${base}`);
  if (!/^[a-z][a-z0-9]{1,7}$/.test(prefix)) throw new Error(`cluster lab prefix must be 2-8 lowercase letters/digits, got '${prefix}'`);
  if (!Number.isInteger(count) || count < 2 || count > 9) throw new Error(`cluster lab nodes must be 2-9, got ${count}`);
  const node = (i: number): ClusterNode => ({
    index: i, selector: `${prefix}-${i}-*`, nodeNs: `${prefix}-${i}-node`, podNs: `${prefix}-${i}-pod`,
    pod: `10.${base}.${i}.10`, underlay: `10.${base}.0.${i}`,
  });
  const rest = Array.from({ length: count - 2 }, (_v, k) => node(k + 3));
  return { prefix, underlay, base, nodes: [node(1), node(2), ...rest] };
}

/** The namespace of the underlay's switch when there are more than two nodes. */
const switchNs = (lab: ClusterLab): string => `${lab.prefix}-ul`;
/** A node's vx0 MAC, fixed so peers can be told it (flannel writes the same from its node annotations). */
const vxMac = (n: ClusterNode): string => `02:b1:00:00:00:${n.index.toString(16).padStart(2, '0')}`;

async function ip(ns: string | null, ...args: string[]): Promise<void> {
  const argv = ns ? ['-n', ns, ...args] : args;
  const r = await execa('ip', argv, { reject: false });
  if (r.exitCode !== 0) throw new Error(`ip ${argv.join(' ')}: ${String(r.stderr).trim()}`);
}

export async function clusterLabUp(lab: ClusterLab): Promise<void> {
  await clusterLabDown(lab);
  const [n1, n2] = lab.nodes;
  const many = lab.nodes.length > 2;
  for (const n of lab.nodes) {
    for (const ns of [n.nodeNs, n.podNs]) {
      await ip(null, 'netns', 'add', ns);
      await ip(ns, 'link', 'set', 'lo', 'up');
    }
    const r = await execa('ip', ['netns', 'exec', n.nodeNs, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'], { reject: false });
    if (r.exitCode !== 0) throw new Error(`sysctl in ${n.nodeNs}: ${String(r.stderr).trim()}`);
  }
  if (many) {
    const sw = switchNs(lab);
    await ip(null, 'netns', 'add', sw);
    await ip(sw, 'link', 'set', 'lo', 'up');
    await ip(sw, 'link', 'add', 'sw0', 'type', 'bridge');
    await ip(sw, 'link', 'set', 'sw0', 'up');
    for (const n of lab.nodes) {
      await ip(null, 'link', 'add', 'ul0', 'netns', n.nodeNs, 'type', 'veth', 'peer', 'name', `p${n.index}`, 'netns', sw);
      await ip(sw, 'link', 'set', `p${n.index}`, 'master', 'sw0');
      await ip(sw, 'link', 'set', `p${n.index}`, 'up');
    }
  } else {
    await ip(null, 'link', 'add', 'ul0', 'netns', n1.nodeNs, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', n2.nodeNs);
  }
  for (const n of lab.nodes) {
    await ip(n.nodeNs, 'addr', 'add', `${n.underlay}/24`, 'dev', 'ul0');
    await ip(n.nodeNs, 'link', 'set', 'ul0', 'up');
    await ip(n.nodeNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip(n.nodeNs, 'addr', 'add', `10.${lab.base}.${n.index}.1/24`, 'dev', 'br0');
    await ip(n.nodeNs, 'link', 'set', 'br0', 'up');
    await ip(n.nodeNs, 'link', 'add', 'vp0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n.podNs);
    await ip(n.nodeNs, 'link', 'set', 'vp0', 'master', 'br0');
    await ip(n.nodeNs, 'link', 'set', 'vp0', 'up');
    await ip(n.podNs, 'addr', 'add', `${n.pod}/24`, 'dev', 'eth0');
    await ip(n.podNs, 'link', 'set', 'eth0', 'up');
    await ip(n.podNs, 'route', 'add', 'default', 'via', `10.${lab.base}.${n.index}.1`);
  }
  for (const n of lab.nodes) {
    const vxAddr = (m: ClusterNode): string => `10.${lab.base}.255.${m.index}`;
    if (lab.underlay === 'vxlan') {
      // Two nodes: a static remote; more: flannel-style entries per peer (below).
      const remote = many ? [] : ['remote', (n.index === 1 ? n2 : n1).underlay];
      const mac = many ? ['address', vxMac(n)] : [];
      await ip(n.nodeNs, 'link', 'add', 'vx0', ...mac, 'type', 'vxlan', 'id', '42', 'local', n.underlay, ...remote, 'dev', 'ul0', 'dstport', '4789');
      await ip(n.nodeNs, 'addr', 'add', `${vxAddr(n)}/24`, 'dev', 'vx0');
      await ip(n.nodeNs, 'link', 'set', 'vx0', 'up');
    }
    for (const peer of lab.nodes) {
      if (peer === n) continue;
      const peerPods = `10.${lab.base}.${peer.index}.0/24`;
      if (lab.underlay === 'routed') {
        await ip(n.nodeNs, 'route', 'add', peerPods, 'via', peer.underlay, 'dev', 'ul0');
        continue;
      }
      if (many) {
        await ip(n.nodeNs, 'neigh', 'add', vxAddr(peer), 'lladdr', vxMac(peer), 'dev', 'vx0', 'nud', 'permanent');
        const r = await execa('bridge', ['-n', n.nodeNs, 'fdb', 'append', vxMac(peer), 'dev', 'vx0', 'dst', peer.underlay], { reject: false });
        if (r.exitCode !== 0) throw new Error(`bridge fdb in ${n.nodeNs}: ${String(r.stderr).trim()}`);
      }
      await ip(n.nodeNs, 'route', 'add', peerPods, 'via', vxAddr(peer), 'dev', 'vx0');
    }
  }
}

export async function clusterLabDown(lab: ClusterLab): Promise<void> {
  for (const n of lab.nodes) for (const ns of [n.nodeNs, n.podNs]) await execa('ip', ['netns', 'del', ns], { reject: false });
  if (lab.nodes.length > 2) await execa('ip', ['netns', 'del', switchNs(lab)], { reject: false });
}

/** A node script sending `count` UDP datagrams of `size` bytes, `gap` ms apart, from `src` to `dst`. */
const SEND = String.raw`
const dgram = require('node:dgram');
const [src, dst, port, count, size, gap] = process.argv.slice(1);
const s = dgram.createSocket('udp4');
let sent = 0;
const next = () => {
  if (sent >= Number(count)) { s.close(); return; }
  sent++;
  s.send(Buffer.alloc(Number(size), 104), Number(port), dst, () => setTimeout(next, Number(gap)));
};
s.bind(0, src, next);
`;

/** Sends datagrams from one node's pod to another's (3 of 48 bytes by default, `gapMs` apart: 100). */
export async function sendPodDatagrams(from: ClusterNode, to: ClusterNode, port: number, count = 3, size = 48, gapMs = 100): Promise<void> {
  await execa('ip', ['netns', 'exec', from.podNs, process.execPath, '-e', SEND, '--', from.pod, to.pod, String(port), String(count), String(size), String(gapMs)]);
}
