/**
 * One round of the demo lab's traffic: each path the lab exists to show, once. Used by
 * `hoptrace lab traffic`, the demo loop and tests.
 */
import type { Lab } from './lab.js';
import { startEcho, sendUdp, sendTcp, type Server, type SendResult } from './traffic.js';

export const ECHO = { podUdp: 5000, podTcp: 80, extUdp: 7000 } as const;

/** Starts the echo servers the rounds talk to. */
export async function startLabServers(lab: Lab): Promise<Server[]> {
  const a = lab.addr;
  const started = await Promise.allSettled([
    startEcho(lab.ns.pod2, 'udp', '0.0.0.0', ECHO.podUdp),
    startEcho(lab.ns.pod2, 'udp', '::', ECHO.podUdp + 1),
    startEcho(lab.ns.pod2, 'tcp', '0.0.0.0', ECHO.podTcp),
    startEcho(lab.ns.pod2, 'udp', '0.0.0.0', ECHO.podTcp),
    startEcho(lab.ns.ext, 'udp', a.ext, ECHO.extUdp),
  ]);
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    // One failed: stop the others rather than leave them running in the lab.
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return servers;
}

export interface RoundResult {
  readonly name: string;
  readonly result: SendResult;
}

export async function trafficRound(lab: Lab): Promise<RoundResult[]> {
  const a = lab.addr;
  const n = lab.ns;
  const rounds: Array<[string, () => Promise<SendResult>]> = [
    ['pod1 → pod2 udp (bridge)', () => sendUdp(n.pod1, a.pod2, ECHO.podUdp, 1)],
    ['pod1 → ext udp (MASQUERADE, reply de-NATed)', () => sendUdp(n.pod1, a.ext, ECHO.extUdp, 1)],
    [`ext → node:${lab.dnatPort} tcp (DNAT to pod2:80)`, () => sendTcp(n.ext, a.nodeExt, lab.dnatPort, 64)],
    [`pod1 → ext udp/${lab.blockedPort} (dropped in FORWARD)`, () => sendUdp(n.pod1, a.ext, lab.blockedPort, 1)],
    ['pod1 → pod2 udp over IPv6', () => sendUdp(n.pod1, a.pod2v6, ECHO.podUdp + 1, 1)],
  ];
  const out: RoundResult[] = [];
  for (const [name, fn] of rounds) out.push({ name, result: await fn() });
  return out;
}
