/**
 * Hand-written topology models for simulator tests: namespaces, veth pairs, bridges, routes
 * (connected and local routes added the way the kernel adds them), and netfilter rules written
 * as iptables-save text or nft JSON.
 */
import type { FdbEntry, TunnelFdbEntry, TunnelParams, IpFamily, Neighbour, NamespaceModel, NetInterface, Netfilter, NfChain, NfRule, PolicyRule, Route, Topology } from '../../shared/topology/model.js';
import { cidrAddress, formatAddr, parsePrefix } from '../../shared/topology/ip.js';
import { netfilterFromIptablesSave } from '../../shared/topology/parse-iptables.js';
import { parseNftRuleset } from '../../shared/topology/parse-nft.js';

interface MNs {
  netns: number;
  name: string;
  interfaces: NetInterface[];
  routes: Route[];
  rules: PolicyRule[];
  forwarding: { ipv4: boolean | null; ipv6: boolean | null };
  bridgeNfCall: { ipv4: boolean; ipv6: boolean };
  chains: NfChain[];
  nfRules: NfRule[];
  neighbours: Neighbour[];
  fdb: FdbEntry[];
  tunnelFdb: TunnelFdbEntry[] | null;
}

export class TopoBuilder {
  private readonly nss = new Map<string, MNs>();
  private nextIno = 4026532000;

  ns(name: string, opts: { forward?: boolean; bridgeNf?: boolean } = {}): this {
    this.nss.set(name, {
      netns: this.nextIno++,
      name,
      interfaces: [],
      routes: [],
      rules: [],
      forwarding: { ipv4: opts.forward ?? false, ipv6: opts.forward ?? false },
      bridgeNfCall: { ipv4: opts.bridgeNf ?? false, ipv6: opts.bridgeNf ?? false },
      chains: [],
      nfRules: [],
      neighbours: [],
      fdb: [],
      tunnelFdb: null,
    });
    this.iface(name, 'lo', 'loopback', ['127.0.0.1/8', '::1/128']);
    return this;
  }

  get(name: string): MNs {
    const n = this.nss.get(name);
    if (!n) throw new Error(`no namespace ${name}`);
    return n;
  }

  iface(ns: string, name: string, kind: string, addrs: string[] = [], opts: { master?: string; up?: boolean } = {}): this {
    const n = this.get(ns);
    n.interfaces.push({
      ifindex: n.interfaces.length + 1, name, kind, mac: null, mtu: 1500, up: opts.up ?? true, carrier: opts.up ?? true,
      addrs, master: opts.master ?? null, peer: null, link: null,
    });
    return this;
  }

  /** A neighbour table entry (`ip neigh`) of `ns`. */
  neigh(ns: string, addr: string, dev: string, mac: string, state = 'REACHABLE'): this {
    this.get(ns).neighbours.push({ addr, dev, mac, state: [state] });
    return this;
  }

  /** A MAC learned on bridge port `port` of `bridge` (`bridge fdb`). */
  fdb(ns: string, mac: string, port: string, bridge: string): this {
    this.get(ns).fdb.push({ mac, port, bridge, permanent: false });
    return this;
  }

  /**
   * A tunnel device (vxlan, geneve, ipip...) with its parameters; `mac` for L2 tunnels. A vxlan
   * with a static remote gets the default FDB entry the kernel adds for it.
   */
  tunnel(ns: string, name: string, params: Partial<TunnelParams> & { type: string }, addrs: string[] = [], opts: { mac?: string; master?: string; up?: boolean } = {}): this {
    this.iface(ns, name, params.type, addrs, opts);
    const n = this.get(ns);
    const i = n.interfaces[n.interfaces.length - 1];
    if (!i) throw new Error('tunnel');
    const tunnel: TunnelParams = { vni: null, local: null, remote: null, dstport: null, underlay: null, learning: null, ...params };
    n.interfaces[n.interfaces.length - 1] = { ...i, mac: opts.mac ?? null, tunnel };
    if (params.type === 'vxlan') {
      n.tunnelFdb ??= [];
      if (tunnel.remote) n.tunnelFdb.push({ mac: '00:00:00:00:00:00', dev: name, dst: tunnel.remote, permanent: true });
    }
    return this;
  }

  /** A vxlan FDB entry (`bridge fdb append MAC dev DEV dst DST`). */
  tunnelFdb(ns: string, mac: string, dev: string, dst: string): this {
    const n = this.get(ns);
    (n.tunnelFdb ??= []).push({ mac, dev, dst, permanent: true });
    return this;
  }

  bridge(ns: string, name: string, addrs: string[] = []): this {
    return this.iface(ns, name, 'bridge', addrs);
  }

  /** A veth pair: [ns, name, addrs, master?] for each end. */
  veth(a: [string, string, string[]?, string?], b: [string, string, string[]?, string?]): this {
    this.iface(a[0], a[1], 'veth', a[2] ?? [], a[3] ? { master: a[3] } : {});
    this.iface(b[0], b[1], 'veth', b[2] ?? [], b[3] ? { master: b[3] } : {});
    const na = this.get(a[0]);
    const nb = this.get(b[0]);
    const ia = na.interfaces[na.interfaces.length - 1];
    const ib = nb.interfaces[nb.interfaces.length - 1];
    if (!ia || !ib) throw new Error('veth');
    na.interfaces[na.interfaces.length - 1] = { ...ia, peer: { netns: nb.netns, ifindex: ib.ifindex, name: ib.name } };
    nb.interfaces[nb.interfaces.length - 1] = { ...ib, peer: { netns: na.netns, ifindex: ia.ifindex, name: ia.name } };
    return this;
  }

  route(ns: string, dst: string, opts: { via?: string; dev?: string; type?: Route['type']; table?: string; metric?: number; prefsrc?: string } = {}): this {
    const family: IpFamily = dst.includes(':') || (opts.via ?? '').includes(':') ? 6 : 4;
    const d = dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : dst;
    this.get(ns).routes.push({
      family, table: opts.table ?? 'main', type: opts.type ?? 'unicast', dst: d, gateway: opts.via ?? null,
      dev: opts.dev ?? null, prefsrc: opts.prefsrc ?? null, metric: opts.metric ?? 0, nexthops: [],
    });
    return this;
  }

  policyRule(ns: string, rule: Partial<PolicyRule> & { priority: number }): this {
    const n = this.get(ns);
    if (!n.rules.some((r) => r.family === (rule.family ?? 4))) {
      for (const [priority, table] of [[0, 'local'], [32766, 'main'], [32767, 'default']] as const) {
        n.rules.push({ family: rule.family ?? 4, priority, action: 'lookup', table, src: null, dst: null, iif: null, oif: null, invert: false, unsupported: [] });
      }
    }
    n.rules.push({ family: 4, action: 'lookup', table: null, src: null, dst: null, iif: null, oif: null, invert: false, unsupported: [], ...rule });
    return this;
  }

  iptables(ns: string, text: string, family: IpFamily = 4): this {
    const errors: string[] = [];
    const nf = netfilterFromIptablesSave(text, family, errors);
    if (errors.length > 0) throw new Error(errors.join('; '));
    this.addNf(ns, nf);
    return this;
  }

  nft(ns: string, items: unknown[]): this {
    const errors: string[] = [];
    const nf = parseNftRuleset({ nftables: items }, errors).netfilter;
    if (errors.length > 0) throw new Error(errors.join('; '));
    this.addNf(ns, nf);
    return this;
  }

  private addNf(ns: string, nf: Netfilter): void {
    const n = this.get(ns);
    n.chains.push(...nf.chains);
    n.nfRules.push(...nf.rules);
  }

  /** Adds the connected (main) and local (local table) routes the kernel derives from addresses. */
  private derived(n: MNs): Route[] {
    const out: Route[] = [];
    for (const i of n.interfaces) {
      for (const c of i.addrs) {
        const p = parsePrefix(c);
        if (!p) continue;
        const addr = cidrAddress(c);
        out.push({ family: p.family, table: 'local', type: 'local', dst: `${addr}/${p.family === 4 ? 32 : 128}`, gateway: null, dev: i.name, prefsrc: addr, metric: 0, nexthops: [] });
        const full = p.family === 4 ? 32 : 128;
        if (p.len < full && i.name !== 'lo') {
          out.push({ family: p.family, table: 'main', type: 'unicast', dst: `${formatAddr({ family: p.family, value: p.base })}/${p.len}`, gateway: null, dev: i.name, prefsrc: addr, metric: 0, nexthops: [] });
        }
        if (i.name === 'lo' && p.family === 4) {
          out.push({ family: 4, table: 'local', type: 'local', dst: '127.0.0.0/8', gateway: null, dev: 'lo', prefsrc: addr, metric: 0, nexthops: [] });
        }
      }
    }
    return out;
  }

  build(): Topology {
    const namespaces: NamespaceModel[] = [...this.nss.values()].map((n) => ({
      netns: n.netns,
      name: n.name,
      path: `/run/netns/${n.name}`,
      pids: [],
      interfaces: n.interfaces,
      routes: [...this.derived(n), ...n.routes],
      rules: n.rules,
      forwarding: n.forwarding,
      bridgeNfCall: n.bridgeNfCall,
      netfilter: { chains: n.chains, rules: n.nfRules },
      neighbours: n.neighbours,
      fdb: n.fdb,
      ...(n.tunnelFdb ? { tunnelFdb: n.tunnelFdb } : {}),
      errors: [],
    }));
    return { namespaces, errors: [], discoveredAt: 0, durationMs: 0 };
  }
}

/** The kernel-notes lab shape: pods on a bridge in a node namespace, an ext namespace behind it. */
export function podLab(opts: { bridgeNf?: boolean } = {}): TopoBuilder {
  return new TopoBuilder()
    .ns('node', { forward: true, bridgeNf: opts.bridgeNf ?? false })
    .ns('pod1')
    .ns('pod2')
    .ns('ext')
    .bridge('node', 'br0', ['10.244.1.1/24', 'fd00:244:1::1/64'])
    .veth(['pod1', 'eth0', ['10.244.1.11/24', 'fd00:244:1::11/64']], ['node', 'veth-pod1', [], 'br0'])
    .veth(['pod2', 'eth0', ['10.244.1.12/24', 'fd00:244:1::12/64']], ['node', 'veth-pod2', [], 'br0'])
    .veth(['ext', 'eth0', ['10.99.0.2/24']], ['node', 'eth-node', ['10.99.0.1/24']])
    .route('pod1', 'default', { via: '10.244.1.1', dev: 'eth0' })
    .route('pod2', 'default', { via: '10.244.1.1', dev: 'eth0' })
    .route('pod1', '::/0', { via: 'fd00:244:1::1', dev: 'eth0' })
    .route('pod2', '::/0', { via: 'fd00:244:1::1', dev: 'eth0' });
}
