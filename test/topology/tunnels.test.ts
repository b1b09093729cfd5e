/**
 * Tunnels in the model (issue 14): tunnel devices' parameters from `ip -d -j link` and the vxlan
 * forwarding database from `bridge -j fdb`, parsed from output captured on the overlay lab, and
 * read by discoverTopology from real namespaces (static vxlan, flannel-style, IPv6 underlay).
 */
import { describe, it, expect, afterEach } from 'vitest';
import { parseInterfaces, parseTunnelFdb } from '../../shared/topology/parse-iproute.js';
import { discoverTopology } from '../../server/topology/discover.js';
import { TUNNEL_LINKS } from './fixtures/tunnel-links.js';
import { listNamespaces } from '../../server/topology/namespaces.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { randomPrefix } from '../helpers/cli.js';
import { overlayLabFor, overlayLabUp, overlayLabDown, type OverlayKind, type OverlayLab } from '../helpers/overlay-lab.js';

// Captured on the overlay lab (test/helpers/overlay-lab.ts), linkinfo of vx0 on node1.
const STATIC = { info_kind: 'vxlan', info_data: { id: 42, remote: '10.77.0.2', local: '10.77.0.1', link: 'ul0', port_range: { low: 0, high: 0 }, port: 4789, learning: true, ttl: 0, df: 'unset', ageing: 300, udp_csum: true } };
const FLANNEL = { info_kind: 'vxlan', info_data: { id: 42, local: '10.77.0.1', link: 'ul0', port_range: { low: 0, high: 0 }, port: 4789, learning: false, ttl: 0 } };
const V6 = { info_kind: 'vxlan', info_data: { id: 42, remote6: 'fd77::2', local6: 'fd77::1', link: 'ul0', port: 4789, learning: true } };
const link = (linkinfo: unknown, name = 'vx0'): unknown => ({ ifindex: 5, ifname: name, flags: ['BROADCAST', 'UP', 'LOWER_UP'], mtu: 1450, link_type: 'ether', address: '02:42:77:00:00:01', linkinfo, addr_info: [] });

describe('tunnel devices and the vxlan FDB from iproute2 JSON', () => {
  it.each([
    ['static remote', STATIC, { type: 'vxlan', vni: 42, local: '10.77.0.1', remote: '10.77.0.2', dstport: 4789, underlay: 'ul0', learning: true }],
    ['flannel (no remote, no learning)', FLANNEL, { type: 'vxlan', vni: 42, local: '10.77.0.1', remote: null, dstport: 4789, underlay: 'ul0', learning: false }],
    ['IPv6 underlay', V6, { type: 'vxlan', vni: 42, local: 'fd77::1', remote: 'fd77::2', dstport: 4789, underlay: 'ul0', learning: true }],
    ['geneve', { info_kind: 'geneve', info_data: { id: 7, remote: '10.77.0.2', port: 6081 } }, { type: 'geneve', vni: 7, local: null, remote: '10.77.0.2', dstport: 6081, underlay: null, learning: null }],
    ['ipip', { info_kind: 'ipip', info_data: { local: '10.77.0.1', remote: '10.77.0.2', link: 'ul0', ttl: 0 } }, { type: 'ipip', vni: null, local: '10.77.0.1', remote: '10.77.0.2', dstport: null, underlay: 'ul0', learning: null }],
    ['gre with an unset local', { info_kind: 'gre', info_data: { local: 'any', remote: '10.77.0.2' } }, { type: 'gre', vni: null, local: null, remote: '10.77.0.2', dstport: null, underlay: null, learning: null }],
    // link_gre.c prints the keys with inet_ntop ("ikey"/"okey" as dotted quads), ttl as a number, pmtudisc as a bool.
    ['gre with a key', { info_kind: 'gre', info_data: { remote: '10.77.0.2', local: '10.77.0.1', link: 'ul0', ttl: 0, pmtudisc: true, ikey: '0.0.1.2', okey: '0.0.1.2' } }, { type: 'gre', vni: null, local: '10.77.0.1', remote: '10.77.0.2', dstport: null, underlay: 'ul0', learning: null, key: 258 }],
    ['gre with a malformed key', { info_kind: 'gre', info_data: { remote: '10.77.0.2', okey: '1.2.3.999' } }, { type: 'gre', vni: null, local: null, remote: '10.77.0.2', dstport: null, underlay: null, learning: null, key: null }],
    // iplink_geneve.c: a metadata-based device prints only "external" (Cilium's, OVN's).
    ['geneve, metadata-based', { info_kind: 'geneve', info_data: { external: true } }, { type: 'geneve', vni: null, local: null, remote: null, dstport: null, underlay: null, learning: null, external: true }],
    ['a tunnel kind with no info_data', { info_kind: 'sit' }, { type: 'sit', vni: null, local: null, remote: null, dstport: null, underlay: null, learning: null }],
  ])('%s', (_name, linkinfo, tunnel) => {
    const errors: string[] = [];
    const [i] = parseInterfaces([link(linkinfo)], errors);
    expect(errors).toEqual([]);
    expect(i?.kind).toBe(tunnel.type);
    expect(i?.tunnel).toEqual(tunnel);
  });

  it('parses geneve, ipip, sit and gre links in the shape iproute2 prints them (fixtures from its source: this kernel has no such devices)', () => {
    const errors: string[] = [];
    const got = parseInterfaces(TUNNEL_LINKS, errors);
    expect(errors).toEqual([]);
    expect(got.map((i) => [i.name, i.kind, i.up, i.mac, i.tunnel])).toEqual([
      ['gn0', 'geneve', true, '02:42:77:00:00:01', { type: 'geneve', vni: 42, local: null, remote: '10.77.0.2', dstport: 6081, underlay: null, learning: null }],
      ['gn6', 'geneve', true, '02:42:77:00:00:01', { type: 'geneve', vni: 7, local: null, remote: 'fd77::2', dstport: 6082, underlay: null, learning: null }],
      ['genev_sys_6081', 'geneve', true, '02:42:77:00:00:01', { type: 'geneve', vni: null, local: null, remote: null, dstport: 6081, underlay: null, learning: null, external: true }],
      // An IP tunnel's "address" is its local IP address: no MAC.
      ['tun0', 'ipip', true, null, { type: 'ipip', vni: null, local: '10.77.0.1', remote: '10.77.0.2', dstport: null, underlay: 'ul0', learning: null }],
      ['tunl0', 'ipip', true, null, { type: 'ipip', vni: null, local: null, remote: null, dstport: null, underlay: null, learning: null }],
      ['s6', 'sit', true, null, { type: 'sit', vni: null, local: '10.77.0.1', remote: '10.77.0.2', dstport: null, underlay: null, learning: null }],
      ['gre1', 'gre', true, null, { type: 'gre', vni: null, local: '10.77.0.1', remote: '10.77.0.2', dstport: null, underlay: 'ul0', learning: null, key: 258 }],
    ]);
    expect(got.find((i) => i.name === 'gn0')?.addrs).toEqual(['10.42.255.1/24']);
  });

  it('gives no tunnel parameters to devices that are not tunnels', () => {
    const [i] = parseInterfaces([link({ info_kind: 'bridge', info_data: {} }, 'br0')], []);
    expect(i?.tunnel).toBeUndefined();
  });

  it('reads the vxlan FDB entries with a dst (the per-peer and the static default), not the bridge ones', () => {
    // `bridge -j fdb show` on node1 of the lab (static remote), plus a bridge entry and a malformed one.
    const json = [
      { mac: '02:42:77:00:00:02', ifname: 'vx0', dst: '10.77.0.2', flags: ['self'], state: '' },
      { mac: '00:00:00:00:00:00', ifname: 'vx0', dst: '10.77.0.2', viaIf: 'ul0', flags: ['self'], state: 'permanent' },
      { mac: 'AA:BB:CC:00:00:01', ifname: 'vp0', master: 'br0', state: '' },
      { mac: 42, ifname: 'vx0', dst: '10.77.0.9' },
    ];
    const errors: string[] = [];
    expect(parseTunnelFdb(json, new Set(['vx0']), errors)).toEqual([
      { mac: '02:42:77:00:00:02', dev: 'vx0', dst: '10.77.0.2', permanent: false },
      { mac: '00:00:00:00:00:00', dev: 'vx0', dst: '10.77.0.2', permanent: true },
    ]);
    expect(errors).toEqual([]);
    // `bridge -j fdb show dev vx0` leaves ifname out: the caller names the device.
    expect(parseTunnelFdb([{ mac: '02:42:77:00:00:02', dst: '10.77.0.2', flags: ['self'], state: 'permanent' }], new Set(['vx0']), [], 'vx0'))
      .toEqual([{ mac: '02:42:77:00:00:02', dev: 'vx0', dst: '10.77.0.2', permanent: true }]);
    const bad: string[] = [];
    expect(parseTunnelFdb({ not: 'an array' }, new Set(['vx0']), bad)).toEqual([]);
    expect(bad).toEqual(['bridge fdb: output is not a JSON array']);
  });
});

describe.skipIf(!isRoot)(`tunnels read from real namespaces (${NEEDS_ROOT})`, () => {
  let lab: OverlayLab | null = null;
  afterEach(async () => {
    if (lab) await overlayLabDown(lab);
    lab = null;
  });

  it.each<[OverlayKind, string | null, string]>([
    ['vxlan', '10.77.0.2', '00:00:00:00:00:00'],
    ['vxlan-flannel', null, '02:42:77:00:00:02'],
    ['vxlan-v6underlay', 'fd77::2', '00:00:00:00:00:00'],
  ])('%s: vx0 with its parameters and its FDB entry to node2', async (kind, remote, mac) => {
    lab = overlayLabFor(randomPrefix('ot').slice(0, 7), { kind });
    await overlayLabUp(lab, { kind });
    const names = new Set(Object.values(lab.ns));
    const t = await discoverTopology({ namespaces: (await listNamespaces()).filter((n) => names.has(n.name)), workloads: false });
    const n1 = t.namespaces.find((n) => n.name === lab?.ns.node1);
    const vx = n1?.interfaces.find((i) => i.name === 'vx0');
    expect(vx?.tunnel).toEqual({ type: 'vxlan', vni: 42, local: lab.addr.ul1, remote, dstport: 4789, underlay: 'ul0', learning: kind !== 'vxlan-flannel' });
    expect(n1?.tunnelFdb).toContainEqual(expect.objectContaining({ mac, dev: 'vx0', dst: lab.addr.ul2 }));
    expect(n1?.errors, JSON.stringify(n1?.errors)).toEqual([]);
  }, 60_000);
});
