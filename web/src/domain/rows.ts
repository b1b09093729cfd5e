/**
 * Keeping the packet list in time order. Packets finish out of order (a drop is known at once,
 * an unanswered packet only after the idle timeout), so each new batch is sorted and merged into
 * the list's tail: only the rows newer than the batch's oldest move, which is a short stretch
 * at the end of even a 100,000-row list.
 */
import type { PacketRow } from './packets.js';

const byTime = (a: PacketRow, b: PacketRow): number => a.t - b.t || a.n - b.n;

/** First index whose row is later than `t` (rows sorted by t). */
function upperBound(rows: readonly PacketRow[], t: number): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((rows[mid] as PacketRow).t <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Merges `batch` into `rows` (sorted by time) in place; returns `rows`. */
export function mergeByTime(rows: PacketRow[], batch: readonly PacketRow[]): PacketRow[] {
  if (batch.length === 0) return rows;
  const sorted = [...batch].sort(byTime);
  const first = sorted[0] as PacketRow;
  const at = upperBound(rows, first.t);
  if (at === rows.length) {
    for (const r of sorted) rows.push(r);
    return rows;
  }
  const tail = rows.splice(at);
  let i = 0;
  let j = 0;
  while (i < tail.length && j < sorted.length) {
    rows.push(byTime(tail[i] as PacketRow, sorted[j] as PacketRow) <= 0 ? (tail[i++] as PacketRow) : (sorted[j++] as PacketRow));
  }
  while (i < tail.length) rows.push(tail[i++] as PacketRow);
  while (j < sorted.length) rows.push(sorted[j++] as PacketRow);
  return rows;
}

export function sortByTime(rows: PacketRow[]): PacketRow[] {
  return rows.sort(byTime);
}
