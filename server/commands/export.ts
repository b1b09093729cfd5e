/**
 * `hoptrace export FILE --pcapng OUT`: a recording as pcapng for Wireshark: one interface per
 * namespace/interface, one packet block per hop, all hops of a packet sharing epb_packetid.
 */
import { RecordingError } from '../../shared/recording/index.js';
import { RecordingFile, exportPcapng } from '../recording/index.js';
import { reportIntegrity } from './replay.js';
import { parseFlags, numberFlag, reportFatal, UsageError } from './common.js';

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

export async function run(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseFlags(argv, {
      pcapng: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      force: { type: 'boolean' },
    }, true);
    if (values.help) {
      process.stdout.write(`${HELP}\n`);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError(`export takes one recording file, got ${positionals.length}`);
    if (!values.pcapng) throw new UsageError('export needs --pcapng OUT (the only output format so far)');
    const from = numberFlag(values.from, 'from');
    const to = numberFlag(values.to, 'to');
    const path = positionals[0] as string;
    let file: RecordingFile;
    try {
      file = await RecordingFile.open(path);
    } catch (err) {
      if (err instanceof RecordingError) {
        process.stderr.write(`hoptrace: cannot export ${path}: ${err.message}\n`);
        return err.code === 'newer-version' ? 2 : 1;
      }
      throw err;
    }
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
  } catch (err) {
    return reportFatal(err);
  }
}
