/**
 * Can this kernel create a tunnel device of a kind? Tried for real in a scratch namespace (the
 * only sure test: a module may load on demand), and when it cannot, the reason in the kernel's
 * and its build configuration's words (/proc/config.gz), for the skip message.
 */
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { release } from 'node:os';

/** The kernel configuration options a tunnel kind needs. */
const CONFIG: Readonly<Record<string, readonly string[]>> = {
  geneve: ['CONFIG_GENEVE'],
  ipip: ['CONFIG_NET_IPIP'],
  gre: ['CONFIG_NET_IPGRE_DEMUX', 'CONFIG_NET_IPGRE'],
  sit: ['CONFIG_IPV6_SIT'],
};

/** A tunnel kind's options as /proc/config.gz sets them ("CONFIG_GENEVE is not set"), null when the file is unreadable. */
function configLines(kind: string): string | null {
  let text: string;
  try {
    text = gunzipSync(readFileSync('/proc/config.gz')).toString();
  } catch {
    return null;
  }
  const say = (opt: string): string => {
    const m = new RegExp(`^(?:${opt}=(\\w+)|# ${opt} is not set)$`, 'm').exec(text);
    return m ? (m[1] ? `${opt}=${m[1]}` : `${opt} is not set`) : `${opt} absent`;
  };
  return (CONFIG[kind] ?? []).map(say).join(', ');
}

/**
 * null when `kind` devices can be made here; else why not: the `ip link add` error and the
 * kernel configuration, e.g. 'the kernel (6.18.44) cannot create geneve devices: "ip link add
 * type geneve": Error: Unknown device type. (/proc/config.gz: CONFIG_GENEVE is not set)'.
 */
export async function tunnelUnsupported(kind: 'geneve' | 'ipip' | 'gre' | 'sit', scratchNs: string): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'needs root to try creating the device';
  const args: Record<string, string[]> = {
    geneve: ['type', 'geneve', 'id', '1', 'remote', '127.0.0.2'],
    ipip: ['type', 'ipip', 'local', '127.0.0.1', 'remote', '127.0.0.2'],
    gre: ['type', 'gre', 'local', '127.0.0.1', 'remote', '127.0.0.2'],
    sit: ['type', 'sit', 'local', '127.0.0.1', 'remote', '127.0.0.2'],
  };
  await execa('ip', ['netns', 'add', scratchNs], { reject: false });
  try {
    const r = await execa('ip', ['-n', scratchNs, 'link', 'add', 't0', ...(args[kind] as string[])], { reject: false });
    if (r.exitCode === 0) return null;
    const config = configLines(kind);
    return `the kernel (${release()}) cannot create ${kind} devices: "ip link add type ${kind}": ${String(r.stderr).trim()}${config ? ` (/proc/config.gz: ${config})` : ''}`;
  } finally {
    await execa('ip', ['netns', 'del', scratchNs], { reject: false });
  }
}
