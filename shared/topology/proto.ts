/** IP protocol names and numbers as nft, iptables and users spell them. */

const BY_NAME: Readonly<Record<string, number>> = {
  icmp: 1, igmp: 2, tcp: 6, udp: 17, gre: 47, esp: 50, ah: 51,
  icmpv6: 58, 'ipv6-icmp': 58, 'icmp6': 58, sctp: 132, udplite: 136, dccp: 33,
};

/** Protocol number for a name or decimal string; null when unknown. */
export function protoNumber(text: string | number): number | null {
  if (typeof text === 'number') return Number.isInteger(text) && text >= 0 && text <= 255 ? text : null;
  const t = text.trim().toLowerCase();
  if (/^\d+$/.test(t)) return protoNumber(Number(t));
  return BY_NAME[t] ?? null;
}

export function protoLabel(n: number): string {
  switch (n) {
    case 1: return 'icmp';
    case 6: return 'tcp';
    case 17: return 'udp';
    case 58: return 'icmpv6';
    case 132: return 'sctp';
    case 33: return 'dccp';
    case 136: return 'udplite';
    default: return String(n);
  }
}

/** Protocols whose header starts with 16-bit source and destination ports. */
export function hasPorts(proto: number): boolean {
  return proto === 6 || proto === 17 || proto === 132 || proto === 33 || proto === 136;
}
