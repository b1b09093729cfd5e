/**
 * The sk_buff header fields every hop probe reads, in one or two loads on the fast tier.
 *
 * On a raw tracepoint every `$skb->field` is its own bpf_probe_read_kernel call (~20–30 ns each,
 * the largest part of a probe run that matches nothing: README "Performance"). Eight of the
 * fields the probes need are adjacent 16-bit fields in every kernel since 3.x, in this order:
 *
 *   inner_protocol, inner_transport_header, inner_network_header, inner_mac_header,   word 0
 *   protocol,       transport_header,       network_header,       mac_header          word 1
 *
 * (the union of inner_protocol/inner_ipproto is 16 bits; 168 and 176 on Linux 6.18). The fast
 * tier reads them as two 8-byte words from `offsetof(struct sk_buff, inner_protocol)` (bpftrace
 * ≥ 0.21 resolves offsetof from BTF) and takes each field out with a shift and a mask. bpftrace
 * 0.17 (the classic tier) has no offsetof: there each use stays a field read, as before.
 *
 * In the .bt sources: `{{SKB_WORDS}}` on a line of its own reads the words ($skbw0, $skbw1) where
 * the probe first needs them, and `{{SKB:field}}` is one of the fields above (a uint64 on the
 * fast tier, the field's own type on the classic one: cast where the type matters).
 */
import type { ProbeTier } from '../shared/api-types.js';

/** Where each field sits: word and bit shift (x86-64 and arm64 are little-endian). */
const FIELDS: Readonly<Record<string, { word: 0 | 1; shift: number }>> = {
  inner_protocol: { word: 0, shift: 0 },
  inner_transport_header: { word: 0, shift: 16 },
  inner_network_header: { word: 0, shift: 32 },
  inner_mac_header: { word: 0, shift: 48 },
  protocol: { word: 1, shift: 0 },
  transport_header: { word: 1, shift: 16 },
  network_header: { word: 1, shift: 32 },
  mac_header: { word: 1, shift: 48 },
};

const WORDS_FAST = [
  '$skbw0 = *(uint64 *)((uint64)$skb + offsetof(struct sk_buff, inner_protocol));',
  '$skbw1 = *(uint64 *)((uint64)$skb + offsetof(struct sk_buff, inner_protocol) + 8);',
];

/**
 * The same for the sending socket (probes/socket.bt, `$sk`): skc_portpair (32 bits: skc_dport,
 * skc_num) and skc_family (16) are adjacent in struct sock_common (12 and 16 on Linux 6.18, in
 * that order since 2.6), one 8-byte read from skc_portpair on the fast tier: `{{SK_WORD}}` reads
 * it ($skcw), `{{SK:skc_portpair}}` and `{{SK:skc_family}}` take the fields out.
 */
const SK_FIELDS: Readonly<Record<string, { shift: number; mask: string }>> = {
  skc_portpair: { shift: 0, mask: '0xffffffff' },
  skc_family: { shift: 32, mask: '0xffff' },
};
const SK_WORD_FAST = '$skcw = *(uint64 *)((uint64)$sk + offsetof(struct sock_common, skc_portpair));';

/** Expands `{{SKB_WORDS}}`, `{{SKB:field}}`, `{{SK_WORD}}` and `{{SK:field}}` for `tier` (see above). */
export function expandSkbWords(source: string, tier: ProbeTier | undefined): string {
  const fast = tier === 'fast';
  return source
    .replace(/^(\s*)\{\{SKB_WORDS\}\}\s*$/gm, (_l, indent: string) => (fast ? WORDS_FAST.map((w) => `${indent}${w}`).join('\n') : ''))
    .replace(/^(\s*)\{\{SK_WORD\}\}\s*$/gm, (_l, indent: string) => (fast ? `${indent}${SK_WORD_FAST}` : ''))
    .replace(/\{\{SK:(\w+)\}\}/g, (_all, field: string) => {
      const f = SK_FIELDS[field];
      if (!f) throw new Error(`probe source: {{SK:${field}}} is not one of the socket word's fields`);
      if (!fast) return `$sk->__sk_common.${field}`;
      return f.shift === 0 ? `($skcw & ${f.mask})` : `(($skcw >> ${f.shift}) & ${f.mask})`;
    })
    .replace(/\{\{SKB:(\w+)\}\}/g, (_all, field: string) => {
      const f = FIELDS[field];
      if (!f) throw new Error(`probe source: {{SKB:${field}}} is not one of the sk_buff header words' fields`);
      if (!fast) return `$skb->${field}`;
      return f.shift === 0 ? `($skbw${f.word} & 0xffff)` : `(($skbw${f.word} >> ${f.shift}) & 0xffff)`;
    });
}
