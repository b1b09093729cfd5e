/**
 * `pod NAME` / `container NAME` in the filter language: parsed with their span, printed back,
 * resolved against a model's workloads into host filters, and refused clearly when unknown,
 * malformed, or used unresolved.
 */
import { describe, expect, it } from 'vitest';
import { compileToBpftrace, describeFilter, FilterError, hasWorkloadFilters, packetMatches, parseFilter, resolveWorkloadFilters } from '../../shared/filter/index.js';
import { workloadDirectory, type Workload } from '../../shared/topology/workloads.js';

const w = (name: string | null, pod: string | null, extra: Partial<Workload> = {}): Workload => ({ runtime: 'podman', id: `${name ?? pod}-id`, name, pod, k8sNamespace: null, image: null, ...extra });
const iface = (addrs: string[], kind = 'veth'): { kind: string; addrs: string[] } => ({ kind, addrs });
const dir = workloadDirectory([
  { workloads: [], interfaces: [iface(['10.0.0.1/24'])] },
  { workloads: [w('web', null)], interfaces: [iface(['127.0.0.1/8', '::1/128'], 'loopback'), iface(['10.213.5.2/24', 'fd00::2/64', 'fe80::1/64'])] },
  { workloads: [w(null, 'shop', { sandbox: true }), w('app', 'shop')], interfaces: [iface(['10.213.5.3/24'])] },
  { workloads: [w('api', 'api-7d4b', { runtime: 'containerd', k8sNamespace: 'prod' })], interfaces: [iface(['10.213.5.4/24'])] },
]);

describe('workload filters', () => {
  it('should parse pod and container names with an optional direction, and print them back', () => {
    const ast = parseFilter('tcp and (src container web or dst pod prod/api-7d4b)');
    expect(hasWorkloadFilters(ast)).toBe(true);
    expect(describeFilter(ast)).toBe('tcp and (src container web or dst pod prod/api-7d4b)');
    expect(parseFilter('pod shop')).toEqual({ kind: 'workload', dir: 'either', what: 'pod', name: 'shop', offset: 4, length: 4 });
    expect(hasWorkloadFilters(parseFilter('host 10.0.0.1'))).toBe(false);
  });

  it('should refuse malformed or missing names with the span of the bad word', () => {
    expect(() => parseFilter('container')).toThrow(/expected a container name after 'container', got end of filter|expected a container name/);
    const e = (() => { try { parseFilter('tcp and pod -x'); } catch (err) { return err; } return null; })();
    expect(e).toBeInstanceOf(FilterError);
    expect((e as FilterError).message).toMatch(/'-x' is not a pod name/);
    expect((e as FilterError).offset).toBe(12);
  });

  it('should resolve names to the namespace\'s addresses, leaving out loopback and link-local', () => {
    expect(describeFilter(resolveWorkloadFilters(parseFilter('container web and tcp'), dir))).toBe('(host 10.213.5.2 or host fd00::2) and tcp');
    // A pod by name, or by namespace/name; its sandbox is no container.
    expect(describeFilter(resolveWorkloadFilters(parseFilter('src pod shop'), dir))).toBe('src host 10.213.5.3');
    expect(describeFilter(resolveWorkloadFilters(parseFilter('pod prod/api-7d4b or pod api-7d4b'), dir))).toBe('host 10.213.5.4 or host 10.213.5.4');
    expect(describeFilter(resolveWorkloadFilters(parseFilter('not container app'), dir))).toBe('not host 10.213.5.3');
    const resolved = resolveWorkloadFilters(parseFilter('container web'), dir);
    const hop = { event: 'xmit' as const, src: '10.213.5.2', dst: '10.0.0.9', sport: 1, dport: 2, proto: 'tcp' };
    expect(packetMatches(resolved, { proto: 'tcp', family: 4, hops: [hop] } as never)).toBe(true);
  });

  it('should name the known workloads when one is unknown', () => {
    const err = (f: string): FilterError => {
      try {
        resolveWorkloadFilters(parseFilter(f), dir);
      } catch (e) {
        return e as FilterError;
      }
      throw new Error('no error');
    };
    expect(err('tcp and container nginx').message).toBe("no container named 'nginx' (known containers: api, app, web)");
    expect(err('tcp and container nginx').offset).toBe(18);
    expect(err('pod nope').message).toBe("no pod named 'nope' (known pods: prod/api-7d4b, shop)");
    // `shop`'s sandbox is not a container of that name.
    expect(err('container shop').message).toMatch(/^no container named 'shop'/);
    expect(resolveWorkloadFilters.bind(null, parseFilter('pod x'), workloadDirectory([])))
      .toThrow("no pod named 'x' (no pods are running here)");
  });

  it('should refuse a workload with no address of its own', () => {
    const hostNet = workloadDirectory([{ workloads: [w('agent', null)], interfaces: [iface(['127.0.0.1/8'], 'loopback')] }]);
    expect(() => resolveWorkloadFilters(parseFilter('container agent'), hostNet)).toThrow(/has no addresses of its own/);
  });

  it('should refuse to compile or match a name nobody resolved, as a filter error', () => {
    const ast = parseFilter('container web');
    expect(() => compileToBpftrace(ast)).toThrow(FilterError);
    const hop = { event: 'xmit' as const, src: '10.213.5.2', dst: '10.0.0.9', sport: 1, dport: 2, proto: 'tcp' };
    expect(() => packetMatches(ast, { proto: 'tcp', family: 4, hops: [hop] } as never)).toThrow(/resolved to addresses where the trace starts/);
  });
});
