/**
 * Namespace names in a trace: a namespace made with `ip netns add` is named by its name; one with
 * no name (as container runtimes make them) by a process that lives in it, `pid N (comm)`.
 * Real namespaces, a real veth pair between them, real bpftrace through the CLI.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execa, type ResultPromise } from 'execa';
import { statSync, readlinkSync } from 'node:fs';
import type { Packet } from '../../shared/packet.js';
import { ping } from '../../server/lab/traffic.js';
import { isRoot, NEEDS_ROOT } from '../helpers/root.js';
import { startTrace, randomPrefix } from '../helpers/cli.js';

describe.skipIf(!isRoot)(`trace names named and unnamed namespaces (${NEEDS_ROOT})`, () => {
  const named = `${randomPrefix('un')}-a`;
  // A /30 of its own per run: only these two namespaces hold it, neither routes anywhere else.
  const net = `10.251.${Math.floor(Math.random() * 250) + 1}`;
  const [addrNamed, addrUnnamed] = [`${net}.1`, `${net}.2`];
  let holder: ResultPromise | undefined;
  let holderPid = 0;

  beforeAll(async () => {
    await execa('ip', ['netns', 'add', named]);
    // `unshare -n` execs sleep in a new network namespace that has no name: the sleep holds it.
    holder = execa('unshare', ['-n', 'sleep', '300'], { reject: false });
    holderPid = holder.pid ?? 0;
    const own = readlinkSync('/proc/self/ns/net');
    for (let i = 0; i < 50 && readlinkSync(`/proc/${holderPid}/ns/net`) === own; i++) await new Promise((r) => setTimeout(r, 20));
    const inUnnamed = (...args: string[]) => execa('nsenter', [`--net=/proc/${holderPid}/ns/net`, 'ip', ...args]);
    await execa('ip', ['link', 'add', 'un-a', 'netns', named, 'type', 'veth', 'peer', 'name', 'un-b', 'netns', String(holderPid)]);
    await execa('ip', ['-n', named, 'addr', 'add', `${addrNamed}/30`, 'dev', 'un-a']);
    await execa('ip', ['-n', named, 'link', 'set', 'un-a', 'up']);
    await inUnnamed('addr', 'add', `${addrUnnamed}/30`, 'dev', 'un-b');
    await inUnnamed('link', 'set', 'un-b', 'up');
    await inUnnamed('link', 'set', 'lo', 'up');
  });

  afterAll(async () => {
    // Ending the sleep ends the unnamed namespace (and the veth pair with it).
    holder?.kill('SIGKILL');
    await holder;
    await execa('ip', ['netns', 'del', named], { reject: false });
  });

  it('should label hops in a named namespace by name and in an unnamed one by a process in it', async () => {
    const unnamedIno = statSync(`/proc/${holderPid}/ns/net`).ino;
    const namedIno = statSync(`/run/netns/${named}`).ino;
    const { child } = await startTrace(['--json', '--no-model', '--filter', `icmp and host ${addrUnnamed}`]);
    const sent = await ping(named, addrUnnamed, 1);
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGINT');
    const r = await child;
    expect(sent.replies).toBe(1);
    expect(r.exitCode).toBe(0);
    const packets = String(r.stdout).split('\n').filter((l) => l.startsWith('{"id"')).map((l) => JSON.parse(l) as Packet);
    const request = packets.find((p) => p.src === addrNamed && p.dst === addrUnnamed && p.hops[0]?.icmpType === 8);
    expect(request?.hops.slice(0, 3).map((h) => `${h.ns}/${h.ifname}/${h.event}`)).toEqual([
      `${named}/un-a/xmit`, `pid ${holderPid} (sleep)/un-b/rx`, `pid ${holderPid} (sleep)/un-b/recv`,
    ]);
    expect(request?.hops.slice(0, 3).map((h) => h.netns)).toEqual([namedIno, unnamedIno, unnamedIno]);
    // The echo reply starts in the unnamed namespace, named the same way.
    const reply = packets.find((p) => p.src === addrUnnamed && p.hops[0]?.icmpType === 0);
    expect(reply?.hops[0]).toMatchObject({ ns: `pid ${holderPid} (sleep)`, netns: unnamedIno, ifname: 'un-b', event: 'xmit' });
  });
});
