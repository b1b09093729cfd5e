/** Hop time (kernel monotonic ns) → wall clock, with the paired start clocks a recording's header keeps. */
import type { RecordingHeader } from './messages.js';

/** Unix time in ns of kernel monotonic time `t`, using the header's paired start clocks. */
export function wallClockNs(header: Pick<RecordingHeader, 'startWallNs' | 'startMonoNs'>, t: number): bigint {
  return header.startWallNs + BigInt(Math.round(t - header.startMonoNs));
}
