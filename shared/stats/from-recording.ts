/**
 * The stats document of a whole recording (.hoptrace): decode, rebuild packets with the same
 * engine as `replay`, then statsFromPackets. For A/B of two recordings (the dashboard, scripts).
 */
import { decodeRecording, namespaceNamesOf, recordingNsName, wallClockNs, type TopologyRecord } from '../recording/index.js';
import type { HopEvent } from '../hop-event.js';
import { reconstructAll } from '../reconstruct.js';
import { statsFromPackets } from './from-packets.js';
import type { StatsDocument } from './types.js';

export function statsFromRecording(bytes: Uint8Array): StatsDocument {
  const { header, records } = decodeRecording(bytes);
  const events: HopEvent[] = [];
  const topo: TopologyRecord[] = [];
  for (const r of records) {
    if (r.kind === 'event') events.push(r.event);
    else if (r.kind === 'topology') topo.push(r.topology);
  }
  const packets = reconstructAll(events, {
    nsName: recordingNsName(namespaceNamesOf(topo)),
    dropReason: (c) => header.dropReasons.get(c) ?? `reason-${c}`,
  });
  return statsFromPackets(packets, {
    filter: header.filter,
    sampleRate: header.sampleRate ?? 1,
    wallClock: (ns) => Number(wallClockNs(header, ns) / 1_000_000n),
  });
}
