/**
 * Namespace names for hops (`ns` in packets) and for clients (`topology` messages).
 */
import { NamespaceNames } from '../namespace-names.js';

export interface NamespaceNamer {
  /** The name, or null when unknown (an unknown inode schedules a refresh). */
  name(netns: number): string | null;
  entries(): Array<[number, string]>;
  refresh(): Promise<void>;
}

export async function loadNamespaceNamer(): Promise<NamespaceNamer> {
  const names = new NamespaceNames();
  await names.refresh();
  return names;
}
