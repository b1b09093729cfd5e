/**
 * Every network namespace of the host, named: `ip netns` names (/run/netns/*), 'host' for the
 * initial namespace (/proc/1/ns/net, else kthreadd's), and the others by a process inside them
 * (`pid 1234 (nginx)`). Cheap enough to call per unknown inode during a trace: readdir, stat and
 * readlink, plus one /proc/PID/comm read per unnamed namespace.
 */
import { readdir, readFile, readlink, stat } from 'node:fs/promises';

export interface NamespaceEntry {
  /** Namespace inode number, as the probes report it. */
  readonly netns: number;
  readonly name: string;
  /** Path usable with `nsenter --net=PATH`. */
  readonly path: string;
  /** Processes whose network namespace this is (sorted). */
  readonly pids: number[];
}

export const NETNS_DIR = '/run/netns';

/** `net:[4026531840]` → 4026531840. */
function inodeOfLink(link: string): number | null {
  const m = /^net:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : null;
}

async function comm(pid: number): Promise<string | null> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** Named namespaces: name → inode. Stale entries (not an nsfs mount) are skipped. */
async function namedNamespaces(dir: string, nsfsDev: number | null): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  let names: string[];
  try {
    names = (await readdir(dir)).sort();
  } catch {
    return out;
  }
  await Promise.all(names.map(async (name) => {
    try {
      const st = await stat(`${dir}/${name}`);
      // A file left behind by `ip netns add` whose mount is gone is a plain tmpfs file.
      if (nsfsDev !== null && st.dev !== nsfsDev) return;
      if (!out.has(st.ino)) out.set(st.ino, name);
      else if (name < (out.get(st.ino) ?? name)) out.set(st.ino, name);
    } catch {
      // Vanished between readdir and stat.
    }
  }));
  return out;
}

export async function listNamespaces(): Promise<Array<{ netns: number; name: string; path: string; pids: number[] }>> {
  const nsfsDev = await stat('/proc/self/ns/net').then((st) => st.dev, () => null);
  const named = await namedNamespaces(NETNS_DIR, nsfsDev);

  const pidsByNs = new Map<number, number[]>();
  const entries = await readdir('/proc').catch((): string[] => []);
  await Promise.all(entries.map(async (e) => {
    if (!/^\d+$/.test(e)) return;
    try {
      const ino = inodeOfLink(await readlink(`/proc/${e}/ns/net`));
      if (ino === null) return;
      const list = pidsByNs.get(ino) ?? [];
      list.push(Number(e));
      pidsByNs.set(ino, list);
    } catch {
      // Process exited, or a kernel thread we may not inspect.
    }
  }));
  for (const list of pidsByNs.values()) list.sort((a, b) => a - b);

  // The initial namespace: init's, or when /proc/1 is out of reach (a sandboxed pid 1),
  // kthreadd's: kernel threads always live in the initial namespace.
  let hostIno: number | null = null;
  let hostPath = '/proc/1/ns/net';
  for (const pid of [1, 2]) {
    try {
      hostIno = inodeOfLink(await readlink(`/proc/${pid}/ns/net`));
      hostPath = `/proc/${pid}/ns/net`;
      if (hostIno !== null) break;
    } catch {
      hostIno = null;
    }
  }

  const out: NamespaceEntry[] = [];
  const seen = new Set<number>();
  if (hostIno !== null) {
    out.push({ netns: hostIno, name: 'host', path: hostPath, pids: pidsByNs.get(hostIno) ?? [] });
    seen.add(hostIno);
  }
  for (const [ino, name] of [...named].sort((a, b) => a[1].localeCompare(b[1]))) {
    if (seen.has(ino)) continue;
    seen.add(ino);
    out.push({ netns: ino, name, path: `${NETNS_DIR}/${name}`, pids: pidsByNs.get(ino) ?? [] });
  }
  const rest = [...pidsByNs].filter(([ino]) => !seen.has(ino)).sort((a, b) => (a[1][0] ?? 0) - (b[1][0] ?? 0));
  await Promise.all(rest.map(async ([ino, pids]) => {
    const pid = pids[0] ?? 0;
    const c = await comm(pid);
    out.push({ netns: ino, name: c ? `pid ${pid} (${c})` : `pid ${pid}`, path: `/proc/${pid}/ns/net`, pids });
  }));
  // Keep a stable order: host, named (by name), then by lowest pid.
  const head = out.filter((n) => !n.name.startsWith('pid '));
  const tail = out.filter((n) => n.name.startsWith('pid ')).sort((a, b) => (a.pids[0] ?? 0) - (b.pids[0] ?? 0));
  return [...head, ...tail];
}
