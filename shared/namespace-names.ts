/**
 * Namespace inode → name, the one vocabulary for it wherever names come from: the live host
 * (server/topology/namespace-names.ts reads /run/netns and /proc), a recording's topology records
 * (namespaceNamesOf: names as the recording host had them, never the replaying host's), or the
 * service's `topology` messages. Pure, browser-safe.
 */
import type { TopologyRecord } from './recording/messages.js';

/** Names of network namespaces by inode; null for an inode it has no name for. */
export interface NamespaceNamer {
  name(netns: number): string | null;
  /** Every inode → name known now (recordings and the stream send these). */
  entries(): Array<[number, string]>;
}

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
