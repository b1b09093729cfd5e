/**
 * `pod NAME` / `container NAME` in a service session's filter (a real server on port 0, a
 * synthetic source, a fixed model with workloads): resolved to the workload's addresses before
 * the feed starts, so the source, the session's JSON and sharing see a plain address filter;
 * an unknown name is a 400 bad-filter pointing at the name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../server/service/index.js';
import type { ApiErrorBody, SessionInfo } from '../../shared/api-types.js';
import type { NamespaceModel, Topology } from '../../shared/topology/model.js';
import { api, postJson, SyntheticSource, SYNTHETIC_CAPS as CAPS } from './helpers.js';

const quiet = (): void => undefined;
const ns = (netns: number, name: string, addr: string, workload: string | null): NamespaceModel => ({
  netns, name, path: `/run/netns/${name}`, pids: [], routes: [], rules: [], forwarding: { ipv4: true, ipv6: false }, bridgeNfCall: { ipv4: false, ipv6: false },
  netfilter: { chains: [], rules: [] }, errors: [],
  interfaces: [{ ifindex: 2, name: 'eth0', kind: 'veth', mac: null, mtu: 1500, up: true, carrier: true, addrs: [`${addr}/24`], master: null, peer: null, link: null }],
  workloads: workload ? [{ runtime: 'podman', id: `${workload}-id`, name: workload, pod: null, k8sNamespace: null, image: 'busybox' }] : [],
  workload,
});
const TOPOLOGY: Topology = { namespaces: [ns(1, 'host', '10.0.0.1', null), ns(2, 'netns-aaaa', '10.213.5.2', 'web')], errors: [], discoveredAt: 1, durationMs: 1 };

describe('workload filters in service sessions', () => {
  const filters: string[] = [];
  let svc: RunningService;

  beforeAll(async () => {
    svc = await startService({
      port: 0, capabilities: CAPS, namespaceNames: null, webDist: null, log: quiet,
      topology: () => Promise.resolve(TOPOLOGY),
      source: (filter: string) => {
        filters.push(filter);
        return new SyntheticSource(filter);
      },
    });
  });
  afterAll(async () => {
    await svc.close();
  });

  it('should start the session on the container\'s addresses', async () => {
    const r = await postJson<SessionInfo>(svc.url, '/api/sessions', { filter: 'container web and tcp' });
    expect(r.status).toBe(201);
    expect(r.body.filter).toBe('host 10.213.5.2 and tcp');
    expect(filters.at(-1)).toBe('host 10.213.5.2 and tcp');
    await api(svc.url, `/api/sessions/${r.body.id}`, { method: 'DELETE' });
  });

  it('should answer 400 bad-filter for an unknown name, pointing at it, and start nothing', async () => {
    const before = filters.length;
    const r = await postJson<ApiErrorBody>(svc.url, '/api/sessions', { filter: 'tcp and pod shop' });
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('bad-filter');
    expect(r.body.error.message).toBe("bad filter: no pod named 'shop' (no pods are running here)");
    expect(r.body.error.detail).toEqual({ offset: 12, length: 4 });
    expect(filters.length).toBe(before);
  });
});
