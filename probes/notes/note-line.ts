/**
 * Parser for the note lines of the notes tier (probes/notes/*.bt, tracepoints) and the
 * function-level tier (probes/deep/*.bt, kprobes). Every note line is
 *
 *   N <kind> <t> <cpu> <skb> <netns> <field> <field> ...
 *
 *   t      bpf_ktime_get_ns(), decimal (the hop lines' clock)
 *   skb    sk_buff address, hex without 0x; 0 when the note names no packet
 *   netns  namespace inode, 0 when unknown
 *
 * then the kind's fields, in this order (the .bt file of each kind says what they mean):
 *
 *   fib      table err iif oif proto sport dport src dst dev                 (probes/notes/fib.bt)
 *   fib6     table err iif oif proto sport dport src dst gw dev              (probes/notes/fib6.bt)
 *   fdb      vid mac bridge port                                             (probes/notes/fdb.bt)
 *   neigh    event family addr state rc dev                                  (probes/notes/neigh.bt)
 *   icmp     type code src dst sport dport                                   (probes/notes/icmp.bt)
 *   qdisc    ifindex handle parent wait_ns                                   (probes/notes/qdisc.bt)
 *   nfhook   pf hook verdict dur_ns                                          (probes/deep/nf_hook_slow.bt)
 *   brfwd    port_ifindex local_rcv port                                     (probes/deep/bridge.bt)
 *   brflood  bridge_ifindex pkt_type vid local_rcv bridge                    (probes/deep/bridge.bt)
 *   veth     ifindex ret peer_netns peer_ifindex dev                         (probes/deep/veth.bt)
 *   ipfwd    ret dur_ns                                                      (probes/deep/ip_forward.bt)
 *   nat      mtype dir ret status                                            (probes/deep/nat.bt)
 *
 * Numbers are decimal except `status` (hex); addresses and names are text. A device name is
 * always the last field (names cannot hold spaces). Fixtures: probes/notes/fixtures/ (captured)
 * and probes/deep/fixtures/ (hand-written: this kernel cannot run kprobes).
 */
import type { HopNote, HopNoteKind } from '../../shared/hop-event.js';
import { HOP_NOTE_KINDS } from '../../shared/hop-event.js';

/** Field type: n integer (may be negative), x hex integer, s text. */
type FieldType = 'n' | 'x' | 's';

export const NOTE_FIELDS: Readonly<Record<HopNoteKind, ReadonlyArray<readonly [string, FieldType]>>> = {
  fib: [['table', 'n'], ['err', 'n'], ['iif', 'n'], ['oif', 'n'], ['proto', 'n'], ['sport', 'n'], ['dport', 'n'], ['src', 's'], ['dst', 's'], ['dev', 's']],
  fib6: [['table', 'n'], ['err', 'n'], ['iif', 'n'], ['oif', 'n'], ['proto', 'n'], ['sport', 'n'], ['dport', 'n'], ['src', 's'], ['dst', 's'], ['gw', 's'], ['dev', 's']],
  fdb: [['vid', 'n'], ['mac', 's'], ['bridge', 's'], ['port', 's']],
  neigh: [['event', 'n'], ['family', 'n'], ['addr', 's'], ['state', 'n'], ['rc', 'n'], ['dev', 's']],
  icmp: [['type', 'n'], ['code', 'n'], ['src', 's'], ['dst', 's'], ['sport', 'n'], ['dport', 'n']],
  qdisc: [['ifindex', 'n'], ['handle', 'n'], ['parent', 'n'], ['wait_ns', 'n']],
  nfhook: [['pf', 'n'], ['hook', 'n'], ['verdict', 'n'], ['dur_ns', 'n']],
  brfwd: [['port_ifindex', 'n'], ['local_rcv', 'n'], ['port', 's']],
  brflood: [['bridge_ifindex', 'n'], ['pkt_type', 'n'], ['vid', 'n'], ['local_rcv', 'n'], ['bridge', 's']],
  veth: [['ifindex', 'n'], ['ret', 'n'], ['peer_netns', 'n'], ['peer_ifindex', 'n'], ['dev', 's']],
  ipfwd: [['ret', 'n'], ['dur_ns', 'n']],
  nat: [['mtype', 'n'], ['dir', 'n'], ['ret', 'n'], ['status', 'x']],
};

const KINDS = new Set<string>(HOP_NOTE_KINDS);

/** Parses one note line; null when it is not a well-formed note line. */
export function parseNoteLine(line: string): HopNote | null {
  if (!line.startsWith('N ')) return null;
  const parts = line.trimEnd().split(' ');
  const kind = parts[1] ?? '';
  if (!KINDS.has(kind)) return null;
  const fields = NOTE_FIELDS[kind as HopNoteKind];
  // A trailing device name may be empty (no device): allow one field fewer then.
  const n = parts.length - 6;
  const lastIsText = fields[fields.length - 1]?.[1] === 's';
  if (n !== fields.length && !(lastIsText && n === fields.length - 1)) return null;
  const [, , t = '', cpu = '', skb = '', netns = ''] = parts;
  if (!/^\d+$/.test(t) || !/^\d+$/.test(cpu) || !/^[0-9a-f]+$/.test(skb) || !/^\d+$/.test(netns)) return null;
  const data: Record<string, number | string> = {};
  for (const [i, [name, type]] of fields.entries()) {
    const raw = parts[6 + i] ?? '';
    if (type === 's') data[name] = raw;
    else if (type === 'x') {
      if (!/^[0-9a-f]+$/.test(raw)) return null;
      data[name] = parseInt(raw, 16);
    } else {
      if (!/^-?\d+$/.test(raw)) return null;
      data[name] = Number(raw);
    }
  }
  return { kind: kind as HopNoteKind, t: Number(t), cpu: Number(cpu), skb, netns: Number(netns), data };
}
