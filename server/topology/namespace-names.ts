/**
 * Namespace inode → name on this host, for labelling hops, kept fresh while a trace runs:
 * namespaces come and go (containers start, labs are built), so an unknown inode triggers a
 * (debounced) re-read. Names of namespaces that disappear are kept: their packets may still be in
 * flight. trace, record, the service and stats all name namespaces through this; recordings carry
 * the names they were made with (shared/namespace-names.ts).
 */
import type { NamespaceNamer } from '../../shared/namespace-names.js';
import { listNamespaces } from './namespaces.js';

/** A NamespaceNamer that can re-read the host. */
export interface LiveNamespaceNamer extends NamespaceNamer {
  refresh(): Promise<void>;
}

/** Knows no namespace (a service that must not read this host, e.g. over synthetic sources). */
export const NO_NAMESPACE_NAMES: LiveNamespaceNamer = { refresh: () => Promise.resolve(), name: () => null, entries: () => [] };

/** The host's names, read once before returning. */
export async function loadNamespaceNames(): Promise<NamespaceNames> {
  const names = new NamespaceNames();
  await names.refresh();
  return names;
}

export class NamespaceNames implements LiveNamespaceNamer {
  private readonly names = new Map<number, string>();
  private readonly unknown = new Set<number>();
  private refreshing: Promise<void> | undefined;
  private lastRefresh = 0;

  constructor(private readonly minRefreshMs = 500) {}

  async refresh(): Promise<void> {
    this.refreshing ??= listNamespaces()
      .then((list) => {
        for (const ns of list) this.names.set(ns.netns, ns.name);
        this.unknown.clear();
      })
      .catch(() => undefined)
      .finally(() => {
        this.lastRefresh = Date.now();
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  /** The name, or null (and a refresh is scheduled) when the inode is not known yet. */
  name = (netns: number): string | null => {
    const n = this.names.get(netns);
    if (n !== undefined) return n;
    if (netns !== 0 && !this.unknown.has(netns)) {
      this.unknown.add(netns);
      if (Date.now() - this.lastRefresh > this.minRefreshMs) void this.refresh();
    }
    return null;
  };

  /** Snapshot for recordings and the stream. */
  entries(): Array<[number, string]> {
    return [...this.names];
  }
}
