/**
 * What `hoptrace setup` tells a host to install, in its distribution's words: the family read from
 * real os-release texts, and the command and package names for each.
 */
import { describe, expect, it } from 'vitest';
import { distroFamily, installCommand, packagesFor, REQUIREMENTS, BPFTRACE } from '../../server/setup/requirements.js';

const OS = {
  debian: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_CODENAME=bookworm\nID=debian\n',
  ubuntu: 'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n',
  rocky: 'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nPRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n',
  leap: 'NAME="openSUSE Leap"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nPRETTY_NAME="openSUSE Leap 15.6"\n',
  arch: 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\n',
  alpine: 'NAME="Alpine Linux"\nID=alpine\nPRETTY_NAME="Alpine Linux v3.20"\n',
  nixos: 'NAME=NixOS\nID=nixos\nPRETTY_NAME="NixOS 24.05 (Uakari)"\n',
};

describe('distroFamily', () => {
  it('should read the family from ID and ID_LIKE, and the name people know', () => {
    expect(distroFamily(OS.debian)).toEqual({ family: 'debian', name: 'Debian GNU/Linux 12 (bookworm)' });
    expect(distroFamily(OS.ubuntu)).toEqual({ family: 'debian', name: 'Ubuntu 24.04.1 LTS' });
    expect(distroFamily(OS.rocky)).toEqual({ family: 'fedora', name: 'Rocky Linux 9.4 (Blue Onyx)' });
    expect(distroFamily(OS.leap).family).toBe('suse');
    expect(distroFamily(OS.arch).family).toBe('arch');
    expect(distroFamily(OS.alpine).family).toBe('alpine');
    expect(distroFamily(OS.nixos)).toEqual({ family: 'other', name: 'NixOS 24.05 (Uakari)' });
    expect(distroFamily('')).toEqual({ family: 'other', name: 'this Linux' });
  });
});

describe('what to install', () => {
  const all = [...REQUIREMENTS, BPFTRACE];
  it("should name each family's packages and installer", () => {
    expect(installCommand('debian', packagesFor(all, 'debian'))).toBe('apt-get install bpftool iproute2 nftables util-linux iputils-ping bpftrace');
    expect(installCommand('fedora', packagesFor(all, 'fedora'))).toBe('dnf install bpftool iproute nftables util-linux iputils bpftrace');
    expect(installCommand('suse', packagesFor(all, 'suse'))).toBe('zypper install bpftool iproute2 nftables util-linux iputils bpftrace');
    expect(installCommand('arch', packagesFor(all, 'arch'))).toBe('pacman -S bpf iproute2 nftables util-linux iputils bpftrace');
    expect(installCommand('alpine', packagesFor(all, 'alpine'))).toBe('apk add bpftool iproute2 nftables util-linux iputils bpftrace');
  });

  it('should not guess an installer it does not know, and name each package once', () => {
    expect(installCommand('other', ['nftables'])).toBeNull();
    const nsenter = REQUIREMENTS.find((r) => r.tool === 'nsenter');
    expect(nsenter).toBeDefined();
    if (nsenter) expect(packagesFor([nsenter, nsenter], 'debian')).toEqual(['util-linux']);
  });
});
