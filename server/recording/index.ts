/**
 * Recordings on the server: writing a live session to a .hoptrace file, reading files back
 * (seek, stream, tail totals), the recordings library of the service, replay and pcapng export.
 */
export { startRecording, type ActiveRecording, type RecordingOptions, type RecordingStats, type RecordingResult, type RecordableSession, type DepthSink } from './recorder.js';
export { RecordingFileWriter, RecordingWriteError, type WriterOptions, type FsyncPolicy, type WriteErrorCode } from './writer.js';
export { RecordingFile, RecordStream, type TailInfo } from './reader.js';
export {
  listRecordings, readRecordingMeta, validateRecording, recordingPath, RecordingNameError, RECORDING_EXTENSION,
  defaultDataDir, libraryName, readMetaOrProblem, recordingEntry, listEntries, openRecording, deleteRecording, storeRecording, StoreError,
  type RecordingMeta, type LibraryEntry, type Validation,
} from './library.js';
export { replayRecording, reconstructOptionsFor, recordedModel, RANGE_MARGIN_NS, type ReplayOptions, type ReplayResult } from './replay.js';
export { exportPcapng, type ExportOptions, type ExportResult } from './export.js';
export { hostInfo } from './host.js';
export { kernelNowNs, pairedClocks } from '../clock.js';
