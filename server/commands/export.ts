/**
 * `hoptrace export FILE --pcapng OUT`: a recording as pcapng for Wireshark: one interface per
 * namespace/interface, one packet block per hop, all hops of a packet sharing epb_packetid.
 */
import { exportPcapng } from '../recording/index.js';
import { reportIntegrity } from './replay.js';
import { openRecordingFile, runCommand, UsageError, SECONDS_IN } from './common.js';

export const summary = 'export a .hoptrace recording to pcapng (one packet block per hop)';

const HELP = `usage: hoptrace export FILE --pcapng OUT [--from T] [--to T] [--force]

Writes the packets of a recording to OUT in pcapng: one interface per (namespace, interface),
named "ns/ifname"; one packet block per hop with the hop's time; every hop of one packet has the
same packet id (Wireshark: frame.packet_id), and a comment names the hoptrace packet and hop.

The probes do not capture packet bytes yet: each block holds IP and TCP/UDP/ICMP headers rebuilt
from the hop's fields (addresses, ports, IPv4 id, TCP flags and sequence, ICMP type and id), with
the original length set to the packet's IP length. TTL, checksums and payload are not real.

      --pcapng OUT  the pcapng file to write (refuses an existing file without --force)
      --from T      only packets that start T seconds or later after the recording started
      --to T        only packets that start before T seconds after the recording started
      --force       replace OUT if it exists
  -h, --help        this help`;

const OPTIONS = { pcapng: { kind: 'string' }, from: SECONDS_IN, to: SECONDS_IN, force: { kind: 'boolean' } } as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP, positionals: true }, async (values, positionals) => {
    if (positionals.length !== 1) throw new UsageError(`export takes one recording file, got ${positionals.length}`);
    if (!values.pcapng) throw new UsageError('export needs --pcapng OUT (the only output format so far)');
    const { from, to } = values;
    const path = positionals[0] as string;
    const file = await openRecordingFile(path, 'export');
    if (typeof file === 'number') return file;
    try {
      const start = file.header.startMonoNs;
      let r;
      try {
        r = await exportPcapng(file, values.pcapng, {
          fromNs: from !== undefined ? start + from * 1e9 : undefined,
          toNs: to !== undefined ? start + to * 1e9 : undefined,
          overwrite: values.force === true,
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new UsageError(`${values.pcapng} already exists; use --force to replace it`);
        if (typeof code === 'string') throw new Error(`cannot write ${values.pcapng}: ${(err as Error).message}`, { cause: err });
        throw err;
      }
      if (r.replay.filterProblem) process.stderr.write(`hoptrace: ${r.replay.filterProblem}\n`);
      process.stderr.write(`hoptrace: wrote ${r.packets} packets as ${r.hops} hop blocks on ${r.interfaces} interfaces to ${values.pcapng}\n`);
      return reportIntegrity(path, r.replay);
    } finally {
      await file.close();
    }
  });
}
