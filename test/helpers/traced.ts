/**
 * What the traced runtime tests (CNI, podman pods) share: reading `trace --json` output, naming a
 * packet in an assertion message, the host's own address, and the checks every ordinary packet
 * of a real runtime must pass (whole, on its expected path, named in container namespaces).
 */
import { execa } from 'execa';
import { expect } from 'vitest';
import type { Packet } from '../../shared/packet.js';
import type { PacketExpectation } from '../../shared/topology/compare.js';

export type Annotated = Packet & PacketExpectation;

export interface TraceSummary {
  readonly type: 'summary';
  readonly splits?: number;
  readonly [k: string]: unknown;
}

/** The packets of `trace --json` / `replay --json` output, and its summary line when there is one. */
export function parseTrace(stdout: string): { packets: Annotated[]; summary: TraceSummary | null } {
  const lines = stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Annotated | { type: string });
  return {
    packets: lines.filter((p): p is Annotated => 'id' in p && !('type' in p && p.type !== undefined)),
    summary: (lines.find((l) => 'type' in l && l.type === 'summary') as TraceSummary | undefined) ?? null,
  };
}

/** One line per packet for assertion messages: its tuple and every hop. */
export const what = (p: Annotated): string =>
  `${p.proto} ${p.src}:${p.sport} > ${p.dst}:${p.dport} [${p.hops.map((h) => `${h.workload ?? h.ns ?? h.netns}/${h.ifname}/${h.event} ${h.src}:${h.sport}>${h.dst}:${h.dport}`).join(', ')}]${p.divergence ? ` DIVERGED: ${p.divergence.summary}` : ''}`;

/** The host's own IPv4 address: a global one on a device that is not a runtime's or a lab's. */
export async function hostAddress(): Promise<string> {
  const links = JSON.parse((await execa('ip', ['-j', '-4', 'addr', 'show', 'scope', 'global'])).stdout) as Array<{ ifname: string; addr_info: Array<{ local: string }>; master?: string }>;
  const own = links.find((l) => !/^(lo|podman|veth|cni|br-|docker|h\d)/.test(l.ifname) && l.master === undefined && l.addr_info.length > 0);
  const a = own?.addr_info[0]?.local;
  if (!a) throw new Error('no global IPv4 address on this host');
  return a;
}

/**
 * Every ordinary packet whole and on its expected path: an expectation, no divergence, a fate
 * that is known, and (with names) the workload on every hop in a container's namespace.
 */
export function expectOrdinary(packets: readonly Annotated[], names: ReadonlyMap<number, string>): void {
  for (const p of packets) {
    expect(p.expected, `no expectation: ${what(p)}`).not.toBeNull();
    expect(p.divergence, what(p)).toBeNull();
    expect(p.fate, what(p)).not.toBe('unknown');
    for (const h of p.hops) {
      const want = names.get(h.netns);
      if (want !== undefined) expect(h.workload, `hop in ${h.ns}: ${what(p)}`).toBe(want);
    }
  }
}

/** One HTTP/1.0 GET with busybox nc from inside a namespace (`ip netns exec`) or the host (null): the response. */
export async function ncGet(netns: string | null, addr: string, port: number): Promise<string> {
  const argv = ['busybox', 'sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 3 ${addr} ${port}`];
  const r = netns === null ? await execa(argv[0] as string, argv.slice(1), { reject: false, timeout: 15_000 }) : await execa('ip', ['netns', 'exec', netns, ...argv], { reject: false, timeout: 15_000 });
  return String(r.stdout);
}
