/**
 * Recordings (.hoptrace): the pure format — framing, records, encoder, incremental decoder.
 * Storage lives elsewhere (server/recording/ for files). See README.md for the layout.
 */
export { RecordingEncoder, type EncoderOptions, type EncoderCounts } from './encoder.js';
export { RecordingDecoder, decodeRecording, type RecordingRecord, type DecoderOptions, type DecodeSummary } from './decoder.js';
export { FrameScanner, findGoodFrame, type Frame, type Damage, type ScanEnd, type Preamble } from './frames.js';
export { RecordingError, type RecordingErrorCode } from './errors.js';
export {
  FORMAT_MAJOR, FORMAT_MINOR, MAGIC, PREAMBLE_LENGTH, RecordType, MAX_FRAME_OVERHEAD, maxPayload, preamble, frame,
} from './format.js';
export type { RecordingHeader, TopologyRecord, NamespaceName, LostRecord, IndexRecord, EndRecord, ClockRecord } from './messages.js';
export { crc32, crc32Update } from './crc32.js';
export { namespaceNamesOf, recordingNsName, type NamespaceTable } from '../namespace-names.js';
export { wallClockNs } from './clock.js';
