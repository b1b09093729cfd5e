/**
 * The CNI harness (test/helpers/cni.ts) drives the reference plugins as a runtime does: ADD gives
 * each namespace an address on the bridge, portmap publishes a port reachable directly, through
 * the host's address on the bridge (hairpin from a neighbour) and through 127.0.0.1 (route_localnet),
 * and DEL plus cleanup leave no namespace, bridge or iptables rule behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { CniLab, cniMissing, type CniContainer } from '../helpers/cni.js';

const missing = cniMissing();
/** One HTTP GET with Node's fetch from inside a namespace (or the host's with null): the status, or the error. */
async function get(netns: string | null, url: string): Promise<string> {
  const node = [process.execPath, '-e', 'fetch(process.argv[1], { signal: AbortSignal.timeout(5000) }).then((r) => console.log(r.status), (e) => console.log(String(e.cause?.code ?? e)))', url];
  const r = netns ? await execa('ip', ['netns', 'exec', netns, ...node], { reject: false }) : await execa(node[0] as string, node.slice(1), { reject: false });
  return String(r.stdout).trim();
}

describe.skipIf(missing !== null)(`CNI reference plugins driven as a runtime drives them (${missing ?? 'containernetworking-plugins installed'})`, () => {
  let lab: CniLab;
  let web: CniContainer;
  let client: CniContainer;
  let server: ReturnType<typeof execa> | undefined;
  const hostPort = 18000 + Math.floor(Math.random() * 900);

  beforeAll(async () => {
    lab = await CniLab.create('rtcni', `10.214.${100 + Math.floor(Math.random() * 100)}.0/24`);
    web = await lab.add('web', { portMappings: [{ hostPort, containerPort: 80, protocol: 'tcp' }] });
    client = await lab.add('cli');
    server = execa('ip', ['netns', 'exec', web.netnsName, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc'], { reject: false });
    await new Promise((r) => setTimeout(r, 500));
  }, 60_000);

  afterAll(async () => {
    server?.kill();
    await lab?.cleanup();
  });

  it('should give each container an address on the bridge and reach the published port three ways', async () => {
    expect(web.addr).not.toBe(client.addr);
    expect(web.addr.startsWith(lab.gateway.replace(/\.1$/, '.'))).toBe(true);
    // Any HTTP status means the connection got there (busybox httpd answers 404 for /).
    expect(await get(client.netnsName, `http://${web.addr}/`)).toMatch(/^\d{3}$/);
    expect(await get(client.netnsName, `http://${lab.gateway}:${hostPort}/`)).toMatch(/^\d{3}$/);
    expect(await get(null, `http://127.0.0.1:${hostPort}/`)).toMatch(/^\d{3}$/);
    const nat = String((await execa('iptables-save', ['-t', 'nat'])).stdout);
    expect(nat).toContain(`--dport ${hostPort} -j DNAT --to-destination ${web.addr}:80`);
  });

  it('should remove everything on DEL and cleanup', async () => {
    await lab.remove(client);
    expect(existsSync(`/run/netns/${client.netnsName}`)).toBe(false);
    server?.kill();
    await lab.cleanup();
    const all = String((await execa('iptables-save')).stdout);
    expect(all).not.toContain(`--dport ${hostPort} `);
    expect(all).not.toContain(lab.networkName);
    expect((await execa('ip', ['link', 'show', lab.bridge], { reject: false })).exitCode).not.toBe(0);
    expect(existsSync(`/run/netns/${web.netnsName}`)).toBe(false);
  });
});
