/**
 * Stats: per-segment latency histograms, namespace transit, drops and interface rates, as
 * aggregated in the kernel by probes/stats/ (or computed from packets), for the CLI, the
 * service, the dashboard and Prometheus. Pure and isomorphic.
 */
export type {
  DropStats, HistBucket, InterfaceStats, LatencySummary, SegmentStats, StatsDocument, StatsNames, StatsPlace, TransitStats,
} from './types.js';
export {
  BUCKET_RELATIVE_ERROR, bucketIndex, bucketRange, clampMax, histCount, histFromCounts, histSumEstimate, mergeHists, percentile,
} from './buckets.js';
export type { BucketRange } from './buckets.js';
export { StatsOutputParser, StatsIntervals, deltaCounts, emptyCounts, placeKey, parsePlaceKey } from './parse.js';
export type { IfaceCounter, PlaceKey, StatsCounts, StatsInterval, StatsSnapshot } from './parse.js';
export { buildStatsDocument, summarize } from './document.js';
export type { DocumentMeta } from './document.js';
export { compareStats, mergeStatsDocuments, placeId, segmentId } from './compare.js';
export type { SegmentComparison, SideSummary, StatsComparison } from './compare.js';
export { StatsTotals, escapeLabel, renderPrometheus } from './prometheus.js';
export { PacketStats, statsFromPackets } from './from-packets.js';
export type { FromPacketsOptions } from './from-packets.js';
export { statsFromRecording } from './from-recording.js';
export { formatStatsComparison, formatStatsDocument, placeLabel, samplingLabel } from './format.js';
export type { FormatComparisonOptions } from './format.js';
export { StatsDocumentSchema, parseStatsLines } from './schema.js';
export type { StatsFileProblem } from './schema.js';
export { flowSampleHash, isSampled } from './sampling.js';
export type { RawFlow } from './sampling.js';
