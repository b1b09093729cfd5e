/**
 * Namespace names for hops (`ns` in packets) and for clients (`topology` messages), from the
 * topology helper's namespace listing (server/namespace-names.ts). Loaded at run time so the
 * service still runs, with null names, where that listing is unavailable.
 */
export interface NamespaceNamer {
  /** The name, or null when unknown (an unknown inode schedules a refresh). */
  name(netns: number): string | null;
  entries(): Array<[number, string]>;
  refresh(): Promise<void>;
}

export async function loadNamespaceNamer(log: (line: string) => void): Promise<NamespaceNamer | null> {
  try {
    const mod = await import('../namespace-names.js');
    const names: NamespaceNamer = new mod.NamespaceNames();
    await names.refresh();
    return names;
  } catch (err) {
    log(`namespace names unavailable (hops will have ns: null): ${(err as Error).message}`);
    return null;
  }
}
