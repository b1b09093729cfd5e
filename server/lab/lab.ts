/**
 * The demo lab: a small container host built from namespaces, for the demo (`npm start`), the
 * integration tests and benchmarks. Every address lives only inside namespaces made here and
 * none of them has a link to the host, so nothing can route out.
 *
 *   pod1 (10.244.1.11, fd00:244:1::11)        pod2 (10.244.1.12, fd00:244:1::12)
 *     eth0                                      eth0
 *      |  veth                                   |  veth
 *   veth-pod1 ── br0 (10.244.1.1, fd00:244:1::1) ── veth-pod2        <- node namespace
 *                 eth-node (10.99.0.1)  — routes, MASQUERADE, DNAT :8080 → pod2:80, FORWARD drop udp/9999
 *                    |  veth
 *                  eth0 (10.99.0.2)                                   <- ext namespace
 */
import { execa } from 'execa';

export interface Lab {
  readonly prefix: string;
  readonly ns: { readonly node: string; readonly pod1: string; readonly pod2: string; readonly ext: string };
  readonly addr: {
    readonly pod1: string; readonly pod2: string; readonly bridge: string;
    readonly pod1v6: string; readonly pod2v6: string;
    readonly nodeExt: string; readonly ext: string;
  };
  /** Port on the node's external address that DNATs to pod2:80 (tcp and udp). */
  readonly dnatPort: number;
  /** UDP port the node's FORWARD chain drops. */
  readonly blockedPort: number;
}

export const LAB_ADDR = {
  pod1: '10.244.1.11', pod2: '10.244.1.12', bridge: '10.244.1.1',
  pod1v6: 'fd00:244:1::11', pod2v6: 'fd00:244:1::12',
  nodeExt: '10.99.0.1', ext: '10.99.0.2',
} as const;

/**
 * The lab's addresses moved into 10.<n>.0.0/16 (pods 10.n.1.0/24, outside 10.n.99.0/24, IPv6
 * fd00:n:1::/64). The probes see every namespace of the host, so two labs with the same
 * addresses on one machine (engineers sharing it, parallel benchmarks) would trace each
 * other's packets; HOPTRACE_LAB_NET=n gives a lab addresses of its own.
 */
export function labAddrIn(n: number): Lab['addr'] {
  if (!Number.isInteger(n) || n < 0 || n > 255) throw new Error(`HOPTRACE_LAB_NET is the second octet of a 10.n.0.0/16 network (0-255); got '${n}'`);
  return {
    pod1: `10.${n}.1.11`, pod2: `10.${n}.1.12`, bridge: `10.${n}.1.1`,
    pod1v6: `fd00:${n}:1::11`, pod2v6: `fd00:${n}:1::12`,
    nodeExt: `10.${n}.99.1`, ext: `10.${n}.99.2`,
  };
}

/** LAB_ADDR, or the network HOPTRACE_LAB_NET names. */
function defaultLabAddr(): Lab['addr'] {
  const n = process.env.HOPTRACE_LAB_NET;
  return n ? labAddrIn(Number(n)) : LAB_ADDR;
}

/** The lab's networks as filter text: pods (IPv4), the outside link, pods (IPv6). */
export function labNets(lab: Lab): { pods: string; ext: string; podsV6: string } {
  const net24 = (a: string): string => `${a.split('.').slice(0, 3).join('.')}.0/24`;
  return { pods: net24(lab.addr.bridge), ext: net24(lab.addr.ext), podsV6: `${lab.addr.pod1v6.replace(/::[0-9a-f]+$/, '::')}/64` };
}

/** Whether `addr` is in one of the lab's networks (labNets): what "the lab's packets" are. */
export function inLabNets(lab: Lab, addr: string): boolean {
  const nets = labNets(lab);
  const starts = [nets.pods.replace(/0\/24$/, ''), nets.ext.replace(/0\/24$/, ''), nets.podsV6.replace(/:\/64$/, '')];
  return starts.some((s) => addr.startsWith(s));
}

// Short enough that `<prefix>-node` and the like stay valid namespace names with room to spare,
// and plain enough to pass through argv, file names and nft comments unquoted.
const PREFIX_RE = /^[a-z][a-z0-9-]{0,8}$/;

/** Why `prefix` cannot name a lab, or null when it can: the CLI reports it as a usage error. */
export function labPrefixProblem(prefix: string): string | null {
  return PREFIX_RE.test(prefix) ? null : `a lab prefix is 1 to 9 lowercase letters, digits or '-', starting with a letter; got '${prefix}'`;
}

export function labFor(prefix: string, addr: Lab['addr'] = defaultLabAddr()): Lab {
  const problem = labPrefixProblem(prefix);
  if (problem !== null) throw new Error(problem);
  return {
    prefix,
    ns: { node: `${prefix}-node`, pod1: `${prefix}-pod1`, pod2: `${prefix}-pod2`, ext: `${prefix}-ext` },
    addr,
    dnatPort: 8080,
    blockedPort: 9999,
  };
}

async function ip(...args: string[]): Promise<void> {
  await execa('ip', args);
}

async function inNs(ns: string, cmd: string, ...args: string[]): Promise<void> {
  await execa('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export async function labExists(lab: Lab): Promise<boolean> {
  const { stdout } = await execa('ip', ['netns', 'list']);
  return stdout.split('\n').some((l) => l.split(' ')[0] === lab.ns.node);
}

/** Builds the lab. Tears down a half-built lab before reporting a failure. */
export async function labUp(lab: Lab): Promise<void> {
  const { node, pod1, pod2, ext } = lab.ns;
  const a = lab.addr;
  try {
    for (const ns of [node, pod1, pod2, ext]) {
      await ip('netns', 'add', ns);
      await ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
    // Create veth ends straight inside their namespaces: no name ever appears on the host.
    await ip('link', 'add', 'veth-pod1', 'netns', node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod1);
    await ip('link', 'add', 'veth-pod2', 'netns', node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod2);
    await ip('link', 'add', 'eth-node', 'netns', node, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ext);
    await ip('-n', node, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', node, 'link', 'set', 'veth-pod1', 'master', 'br0');
    await ip('-n', node, 'link', 'set', 'veth-pod2', 'master', 'br0');
    await ip('-n', node, 'addr', 'add', `${a.bridge}/24`, 'dev', 'br0');
    await ip('-n', node, '-6', 'addr', 'add', `${labNets(lab).podsV6.replace('::/64', '::1/64')}`, 'dev', 'br0', 'nodad');
    await ip('-n', node, 'addr', 'add', `${a.nodeExt}/24`, 'dev', 'eth-node');
    for (const dev of ['br0', 'veth-pod1', 'veth-pod2', 'eth-node']) await ip('-n', node, 'link', 'set', dev, 'up');
    for (const [ns, v4, v6] of [[pod1, a.pod1, a.pod1v6], [pod2, a.pod2, a.pod2v6]] as const) {
      await ip('-n', ns, 'addr', 'add', `${v4}/24`, 'dev', 'eth0');
      await ip('-n', ns, '-6', 'addr', 'add', `${v6}/64`, 'dev', 'eth0', 'nodad');
      await ip('-n', ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', ns, 'route', 'add', 'default', 'via', a.bridge);
    }
    await ip('-n', ext, 'addr', 'add', `${a.ext}/24`, 'dev', 'eth0');
    await ip('-n', ext, 'link', 'set', 'eth0', 'up');
    // ext gets no route back to the pods: only the node's MASQUERADE makes replies possible.
    await inNs(node, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
    const ipt = (...args: string[]): Promise<void> => inNs(node, 'iptables', ...args);
    await ipt('-t', 'nat', '-A', 'POSTROUTING', '-s', labNets(lab).pods, '-o', 'eth-node', '-j', 'MASQUERADE');
    for (const proto of ['tcp', 'udp']) {
      await ipt('-t', 'nat', '-A', 'PREROUTING', '-i', 'eth-node', '-p', proto, '--dport', String(lab.dnatPort),
        '-j', 'DNAT', '--to-destination', `${a.pod2}:80`);
    }
    await ipt('-A', 'FORWARD', '-p', 'udp', '--dport', String(lab.blockedPort), '-j', 'DROP');
  } catch (err) {
    await labDown(lab);
    throw err;
  }
}

/** Removes the lab's namespaces (which takes their links, bridge and rules with them). Never throws. */
export async function labDown(lab: Lab): Promise<void> {
  for (const ns of Object.values(lab.ns)) {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  }
}
