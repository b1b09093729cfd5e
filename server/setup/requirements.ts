/**
 * What a host needs to run hoptrace (not to build or test it: that is scripts/setup.sh), and what
 * each piece is called by each family of distributions, so that `hoptrace setup` can say what to
 * install in the host's own words. Pure: the host is read by server/commands/setup.ts.
 */

/** Families whose package names and installer we know; 'other' gets the upstream names. */
export type DistroFamily = 'debian' | 'fedora' | 'suse' | 'arch' | 'alpine' | 'other';

export interface Requirement {
  /** The command hoptrace runs (found through PATH, as hoptrace itself finds it). */
  readonly tool: string;
  /** What hoptrace uses it for, in a few words. */
  readonly why: string;
  /** The package that provides it, per family ('other': the upstream project's name). */
  readonly pkg: Readonly<Record<DistroFamily, string>>;
}

const same = (name: string): Readonly<Record<DistroFamily, string>> => ({ debian: name, fedora: name, suse: name, arch: name, alpine: name, other: name });

export const BPFTRACE: Requirement = { tool: 'bpftrace', why: 'runs the probes', pkg: same('bpftrace') };

export const REQUIREMENTS: readonly Requirement[] = [
  { tool: 'bpftool', why: "reads the kernel's drop reasons and tracepoint arguments from BTF", pkg: { ...same('bpftool'), arch: 'bpf' } },
  { tool: 'ip', why: 'lists namespaces, links and routes; builds the lab', pkg: { ...same('iproute2'), fedora: 'iproute' } },
  { tool: 'nft', why: 'reads NAT and filter rules; --netfilter', pkg: same('nftables') },
  { tool: 'nsenter', why: "reads each namespace's rules (util-linux)", pkg: same('util-linux') },
  // Only the lab sends pings, but `hoptrace lab` and `serve --lab demo` are part of the package.
  { tool: 'ping', why: "the demo lab's traffic", pkg: { ...same('iputils'), debian: 'iputils-ping' } },
];

/** The family of a host from /etc/os-release's text (ID and ID_LIKE). */
export function distroFamily(osRelease: string): { family: DistroFamily; name: string } {
  const field = (k: string): string => (new RegExp(`^${k}=(.*)$`, 'm').exec(osRelease)?.[1] ?? '').replace(/^["']|["']$/g, '');
  const ids = `${field('ID')} ${field('ID_LIKE')}`.toLowerCase().split(/\s+/).filter(Boolean);
  const name = field('PRETTY_NAME') || field('NAME') || field('ID') || 'this Linux';
  const has = (...xs: string[]): boolean => xs.some((x) => ids.includes(x));
  if (has('debian', 'ubuntu')) return { family: 'debian', name };
  if (has('fedora', 'rhel', 'centos')) return { family: 'fedora', name };
  if (has('suse', 'opensuse')) return { family: 'suse', name };
  if (has('arch')) return { family: 'arch', name };
  if (has('alpine')) return { family: 'alpine', name };
  return { family: 'other', name };
}

/** The command a person would type to install `pkgs` on a family, or null when we cannot tell. */
export function installCommand(family: DistroFamily, pkgs: readonly string[]): string | null {
  const list = pkgs.join(' ');
  switch (family) {
    case 'debian': return `apt-get install ${list}`;
    case 'fedora': return `dnf install ${list}`;
    case 'suse': return `zypper install ${list}`;
    case 'arch': return `pacman -S ${list}`;
    case 'alpine': return `apk add ${list}`;
    default: return null;
  }
}

/** The packages that provide the missing tools, each once, in the order of REQUIREMENTS. */
export function packagesFor(missing: readonly Requirement[], family: DistroFamily): string[] {
  return [...new Set(missing.map((r) => r.pkg[family]))];
}
