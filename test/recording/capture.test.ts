/**
 * Captured header bytes end to end: `record --capture-bytes` keeps the first bytes from the IP
 * header at every hop, and `export --pcapng` writes those real bytes — so Wireshark sees what the
 * kernel saw at each hop (here: the TTL the node's forwarding decremented), not rebuilt headers.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startLabServers, ECHO } from '../../server/lab/rounds.js';
import { sendUdp, type Server } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { cli, startReady, randomPrefix } from '../helpers/cli.js';

describe.skipIf(!isRoot)(`captured header bytes (${NEEDS_ROOT})`, () => {
  let lab: Lab;
  let servers: Server[] = [];
  let dir: string;

  beforeAll(async () => {
    lab = labFor(randomPrefix('cb'));
    await labUp(lab);
    servers = await startLabServers(lab);
    dir = mkdtempSync(join(tmpdir(), 'hoptrace-capture-'));
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records real header bytes per hop and exports them to pcapng', async () => {
    const file = join(dir, 'cap.hoptrace');
    const pcap = join(dir, 'cap.pcapng');
    const { child } = await startReady(['record', '-o', file, '--capture-bytes', '56', '--filter', `udp and host ${lab.addr.ext} and port ${ECHO.extUdp}`]);
    await sendUdp(lab.ns.pod1, lab.addr.ext, ECHO.extUdp, 2, 32, 50);
    await new Promise((r) => setTimeout(r, 500));
    child.kill('SIGINT');
    const rec = await child;
    expect(rec.exitCode).toBe(0);
    // 56 bytes may not fit the BPF stack next to this filter: then the recorder says it took fewer.
    const captured = /capturing (\d+) instead/.exec(String(rec.stderr))?.[1] ?? '56';
    const exp = await cli(['export', file, '--pcapng', pcap]);
    expect(exp.exitCode).toBe(0);
    const { stdout } = await execa('tshark', ['-r', pcap, '-T', 'fields', '-e', 'frame.interface_name', '-e', 'ip.src', '-e', 'ip.ttl', '-e', 'udp.dstport', '-e', 'frame.cap_len']);
    const rows = String(stdout).trim().split('\n').map((l) => l.split('\t'));
    const at = (ns: string, ifname: string, src: string): string[] | undefined => rows.find((r) => r[0] === `${ns}/${ifname}` && r[1] === src);
    // Leaving the pod: TTL as the sender set it; leaving the node after forwarding and MASQUERADE: one less.
    const fromPod = at(lab.ns.pod1, 'eth0', lab.addr.pod1);
    const fromNode = at(lab.ns.node, 'eth-node', lab.addr.nodeExt);
    expect(fromPod?.[2]).toBe('64');
    expect(fromNode?.[2]).toBe('63');
    expect(fromNode?.[3]).toBe(String(ECHO.extUdp));
    // The 60-byte datagram is cut at the captured size (the original length is kept in the block).
    expect(Number(fromPod?.[4])).toBe(Number(captured));
  });

  it('refuses a capture size the probes cannot carry', async () => {
    const r = await cli(['record', '-o', join(dir, 'x.hoptrace'), '--capture-bytes', '200']);
    expect(r.exitCode).toBe(2);
    expect(String(r.stderr)).toMatch(/--capture-bytes takes a whole number from 0 to 56/);
  });
});
