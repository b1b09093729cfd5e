/**
 * What a packet's last free means: a drop, or a socket's discard of a packet it had already
 * received (issue 19). The kernel frees many packets through kfree_skb (with a drop reason) after
 * they were delivered: TCP frees a pure ACK once it has read it (NOT_SPECIFIED), the rest of a
 * socket's queue when it closes (QUEUE_PURGE), a retransmission whose data it already has
 * (TCP_OLD_DATA). Such a packet reached the stack it was addressed to; calling it dropped would
 * be a false alarm on every TCP connection. Pure: shared by shared/reconstruct.ts and its oracle.
 *
 * Measured on this kernel (6.18, a lab TCP round and the host's own TCP): a pure ACK received in
 * the pod owning its destination, then `drop` NOT_SPECIFIED in that pod; a FIN received in the
 * host, then QUEUE_PURGE; a data segment received twice, TCP_OLD_DATA; host loopback segments
 * (the host's lo is not traced) seen only as their TCP_OLD_DATA free.
 */

/**
 * Reasons only a receiving socket's TCP input gives (tcp_v4_rcv/tcp_rcv_state_process and the
 * functions they call), so the packet was delivered, wherever it was last seen. Each says the
 * packet's content was had or no longer wanted, not lost (enum skb_drop_reason,
 * include/net/dropreason-core.h):
 * - TCP_OLD_DATA: its data had all been received before (a spurious retransmission).
 * - TCP_OFOMERGE: its data was already in the out-of-order queue.
 * - TCP_OLD_SEQUENCE: an old duplicate (its sequence was acknowledged).
 * - TCP_OLD_ACK: an ACK older than the latest one, in the window: nothing new in it.
 * - TCP_CLOSE: arrived on a socket already in CLOSE state (the connection was over).
 * - TCP_ABORT_ON_DATA: data after the application closed its socket; TCP answers with a reset.
 * - SOCKET_CLOSE: the socket was closed with the packet still queued on it.
 * Not here, because they lose data a sender or application wanted, or flag something wrong, and
 * so stay drops: NO_SOCKET (closed port), SOCKET_FILTER, SOCKET_RCVBUFF, SOCKET_BACKLOG,
 * PROTO_MEM, TCP_LISTEN_OVERFLOW, TCP_ZEROWINDOW, TCP_OVERWINDOW, TCP_OFO_DROP,
 * TCP_OFO_QUEUE_PRUNE, TCP_CSUM, TCP_FLAGS, TCP_RESET (an invalid reset), TCP_INVALID_* ,
 * TCP_TOO_OLD_ACK, TCP_ACK_UNSENT_DATA, TCP_RFC7323_* (PAWS), TCP_MINTTL, the MD5/AO checks.
 */
export const DISCARD_BY_SOCKET: ReadonlySet<string> = new Set([
  'TCP_OLD_DATA', 'TCP_OFOMERGE', 'TCP_OLD_SEQUENCE', 'TCP_OLD_ACK', 'TCP_CLOSE', 'TCP_ABORT_ON_DATA', 'SOCKET_CLOSE',
]);

/**
 * Reasons that also come from places other than a socket, so they mean "discarded after
 * delivery" only when the packet was last seen taken in by the stack it was addressed to:
 * - NOT_SPECIFIED: the catch-all; TCP frees processed segments (pure ACKs, a FIN's skb) with it.
 * - QUEUE_PURGE: skb_queue_purge; a socket's queues at close, but also a neighbour's queue of
 *   packets waiting for ARP (a real loss, on the way), or a device's queue.
 */
export const DISCARD_AFTER_ARRIVAL: ReadonlySet<string> = new Set(['NOT_SPECIFIED', 'QUEUE_PURGE']);

/** The latest hop before the free (not a free), as the rule needs it. */
export interface ArrivalHop {
  readonly event: string;
  readonly netns: number;
  readonly ifname: string;
  readonly dst: string;
}

/** Whether `addr` is a loopback address (127.0.0.0/8, ::1): always the stack's own. */
export function isLoopbackAddr(addr: string): boolean {
  return addr.startsWith('127.') || addr === '::1';
}

/**
 * Whether the packet whose latest hop was `last` had reached the stack it was addressed to:
 * received (`recv`) in the namespace owning its destination, or on loopback (a loopback device,
 * or a loopback destination: the host's own lo is not traced).
 */
export function reachedItsStack(last: ArrivalHop, isLocal: ((netns: number, addr: string) => boolean) | undefined): boolean {
  if (last.event !== 'recv') return false;
  if (last.ifname === 'lo' || isLoopbackAddr(last.dst)) return true;
  return isLocal?.(last.netns, last.dst) ?? false;
}

/**
 * How a free with drop reason `reason` reads: 'drop', or how we know it was a socket's discard
 * after delivery ('socket' from the reason alone, 'local-address' from where the packet was).
 * `last` is the latest hop before the free (null when the free is all that was seen), `freeDst`
 * the destination the free carried, `freeNetns` the free's namespace (0: none).
 */
export function readFree(
  reason: string,
  last: ArrivalHop | null,
  freeDst: string,
  freeNetns: number,
  isLocal: ((netns: number, addr: string) => boolean) | undefined,
): 'drop' | 'socket' | 'local-address' {
  if (DISCARD_BY_SOCKET.has(reason)) return 'socket';
  if (!DISCARD_AFTER_ARRIVAL.has(reason)) return 'drop';
  if (last === null) return isLoopbackAddr(freeDst) ? 'local-address' : 'drop';
  // Freed in another namespace than it arrived in: it went on, unseen, so the arrival says nothing.
  if (freeNetns !== 0 && freeNetns !== last.netns) return 'drop';
  // Rewritten since that arrival (br_netfilter's DNAT at a bridge port runs after the port's
  // recv): it was going on to its new destination, and only a local one would be a delivery. A
  // container's hairpin to its own published port, bridged back to a port without hairpin mode,
  // is freed so (NOT_SPECIFIED) right after its recv for the host's address.
  if (freeDst !== '' && freeDst !== last.dst && !isLoopbackAddr(freeDst) && !(isLocal?.(last.netns, freeDst) ?? false)) return 'drop';
  return reachedItsStack(last, isLocal) ? 'local-address' : 'drop';
}
