/**
 * What a replay needs from a recording's topology records and header: namespace names as the
 * recording host had them (never the replaying host's) and hop time → wall clock.
 */
import type { RecordingHeader, TopologyRecord } from './messages.js';

/** netns inode → name. */
export type NamespaceTable = ReadonlyMap<number, string>;

/**
 * Folds topology records (in file order) into one name table. Names of namespaces that went away
 * are kept: their packets may still be in the recording, and inodes are rarely reused within one.
 */
export function namespaceNamesOf(records: Iterable<TopologyRecord>): Map<number, string> {
  const names = new Map<number, string>();
  for (const r of records) {
    for (const n of r.namespaces) if (n.name !== '') names.set(n.netns, n.name);
  }
  return names;
}

/** nsName callback for the Reconstructor, from a recording's table. */
export function recordingNsName(table: NamespaceTable): (netns: number) => string | null {
  return (netns) => table.get(netns) ?? null;
}

/** Unix time in ns of kernel monotonic time `t`, using the header's paired start clocks. */
export function wallClockNs(header: Pick<RecordingHeader, 'startWallNs' | 'startMonoNs'>, t: number): bigint {
  return header.startWallNs + BigInt(Math.round(t - header.startMonoNs));
}
