/**
 * Recordings as the dashboard handles them: the service's library (list, upload, delete,
 * download) and the recording of the live session (start, stop, its progress for the status bar,
 * and its failures — disk full, file removed — which stop the recording but never the session).
 */
import { reactive } from 'vue';
import type { RecordingEntry, RecordingStatus } from '../api/contract.js';
import { isRecordingEntry, isRecordingList, isRecordingStatus, isSessionInfo } from '../api/contract.js';
import type { RestClient } from '../api/rest.js';
import { formatBytes } from '../domain/format.js';

export interface RecordingNotice {
  readonly kind: 'error' | 'warning' | 'info';
  readonly title: string;
  readonly body: string;
  readonly hints?: readonly string[];
}

/** How often the running recording's numbers are refreshed (GET /api/sessions/:id). */
const POLL_MS = 1000;

export const RECORDING_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/** A library name from a file name: `.hoptrace` dropped, characters the service refuses replaced. */
export function recordingNameFor(fileName: string): string {
  const stem = fileName.replace(/\.hoptrace$/i, '');
  let name = stem.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/\.{2,}/g, '.').replace(/^[^A-Za-z0-9]+/, '').slice(0, 100);
  name = name.replace(/[.-]+$/, '');
  return name || 'recording';
}

/** Why a name would be refused, or null when the service takes it. */
export function recordingNameProblem(name: string): string | null {
  if (!RECORDING_NAME_RE.test(name)) return 'letters, digits, ".", "_" and "-" only, at most 100, starting with a letter or digit';
  if (name.includes('..')) return 'no ".."';
  if (name.endsWith('.')) return 'not ending with "."';
  return null;
}

export const recordingPath = (name: string): string => `/api/recordings/${encodeURIComponent(name)}`;

export function createRecordings(rest: RestClient, notify: (n: RecordingNotice) => void) {
  const library = reactive({
    open: false,
    entries: [] as RecordingEntry[],
    loading: false,
    loaded: false,
    /** Why the library cannot be listed (no service, no --data-dir), null when it can. */
    error: null as string | null,
    /** Name being uploaded, and the service's answer when it refused. */
    uploading: null as string | null,
    uploadError: null as string | null,
    /** Per name: what failed (delete, download). */
    rowErrors: {} as Record<string, string>,
    /** The entry just added (upload, a recording stopped): highlighted once. */
    fresh: null as string | null,
  });

  const live = reactive({
    session: null as string | null,
    status: null as RecordingStatus | null,
    starting: false,
    stopping: false,
    /** Why the last start or stop failed, null when it did not. */
    error: null as string | null,
  });

  let poll: ReturnType<typeof setTimeout> | undefined;

  const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

  async function refresh(): Promise<void> {
    library.loading = true;
    try {
      const list = await rest.get('/api/recordings', isRecordingList);
      library.entries = [...list.recordings];
      library.error = null;
    } catch (err) {
      library.error = message(err);
    } finally {
      library.loading = false;
      library.loaded = true;
    }
  }

  function toggle(open = !library.open): void {
    library.open = open;
    if (open) void refresh();
  }

  /** Stores a file in the library under `name`; the service validates it first (400/409/413 say why not). */
  async function upload(file: Blob, name: string): Promise<boolean> {
    const problem = recordingNameProblem(name);
    if (problem) {
      library.uploadError = `Bad name: ${problem}.`;
      return false;
    }
    library.uploading = name;
    library.uploadError = null;
    try {
      const entry = await rest.upload(`/api/recordings?name=${encodeURIComponent(name)}`, file, isRecordingEntry);
      library.fresh = entry.name;
      await refresh();
      return true;
    } catch (err) {
      library.uploadError = message(err);
      return false;
    } finally {
      library.uploading = null;
    }
  }

  async function remove(name: string): Promise<boolean> {
    delete library.rowErrors[name];
    try {
      await rest.del(recordingPath(name));
      library.entries = library.entries.filter((e) => e.name !== name);
      return true;
    } catch (err) {
      library.rowErrors[name] = message(err);
      return false;
    }
  }

  /** The file's bytes (opening a recording, or downloading it when a token must be sent). */
  function bytes(name: string): Promise<ArrayBuffer> {
    return rest.bytes(recordingPath(name));
  }

  /** Saves a recording to this computer through the token-carrying client. */
  async function download(name: string, file = `${name}.hoptrace`): Promise<void> {
    delete library.rowErrors[name];
    try {
      const blob = new Blob([await bytes(name)], { type: 'application/octet-stream' });
      const url = URL.createObjectURL(blob);
      const a = document.createElement('a');
      a.href = url;
      a.download = file;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      library.rowErrors[name] = message(err);
    }
  }

  // ---- the live session's recording ----

  /** Follows `session` (null: none): its recording state from the service, refreshed while it runs. */
  function follow(session: string | null, status: RecordingStatus | null | undefined): void {
    live.session = session;
    live.error = null;
    setStatus(status ?? null);
  }

  function setStatus(s: RecordingStatus | null): void {
    live.status = s;
    clearTimeout(poll);
    if (s?.running) poll = setTimeout(() => void refreshStatus(), POLL_MS);
  }

  async function refreshStatus(): Promise<void> {
    const id = live.session;
    if (!id) return;
    try {
      const info = await rest.get(`/api/sessions/${encodeURIComponent(id)}`, isSessionInfo);
      if (live.session !== id) return;
      const r = info.recordingStatus;
      if (r === undefined || r === null) {
        setStatus(null);
        return;
      }
      if (isRecordingStatus(r)) {
        const was = live.status;
        setStatus(r);
        if (was?.running && !r.running && r.error) failed(r, `recording '${r.name}' stopped: ${r.error}`);
      }
    } catch {
      // The connection state tells when the service is gone; try again later.
      if (live.status?.running) poll = setTimeout(() => void refreshStatus(), POLL_MS * 3);
    }
  }

  async function start(name?: string): Promise<void> {
    const id = live.session;
    if (!id || live.starting) return;
    live.starting = true;
    live.error = null;
    try {
      const body = name ? { name } : {};
      const s = await rest.post(`/api/sessions/${encodeURIComponent(id)}/recording`, body, isRecordingStatus);
      if (live.session === id) setStatus(s);
    } catch (err) {
      live.error = message(err);
      notify({ kind: 'error', title: 'Could not start recording', body: message(err) });
    } finally {
      live.starting = false;
    }
  }

  async function stop(): Promise<RecordingEntry | null> {
    const id = live.session;
    if (!id || live.stopping) return null;
    live.stopping = true;
    live.error = null;
    try {
      const entry = await rest.del(`/api/sessions/${encodeURIComponent(id)}/recording`, isRecordingEntry);
      if (live.status) setStatus({ ...live.status, running: false, events: entry.events, bytes: entry.sizeBytes, endReason: entry.endReason });
      library.fresh = entry.name;
      notify({
        kind: 'info', title: `Recording '${entry.name}' saved`,
        body: `${entry.events} events, ${formatBytes(entry.sizeBytes)}, ${entry.durationS.toFixed(1)} s — in the recordings library (l).`,
      });
      if (library.open) void refresh();
      return entry;
    } catch (err) {
      live.error = message(err);
      notify({ kind: 'error', title: 'Could not stop recording', body: message(err) });
      // It may have ended meanwhile (an error, another page): the service knows.
      void refreshStatus();
      return null;
    } finally {
      live.stopping = false;
    }
  }

  /** A session-state message about this session's recording (started, stopped, failed). */
  function onStreamStatus(r: RecordingStatus, text: string): void {
    if (r.session !== live.session) return;
    const was = live.status;
    setStatus(r);
    if (r.error && (was === null || was.running || was.name !== r.name)) failed(r, text);
    if (!r.running && library.open) void refresh();
  }

  function failed(r: RecordingStatus, text: string): void {
    notify({
      kind: 'error', title: 'Recording stopped', body: text || `recording '${r.name}' stopped: ${r.error ?? ''}`,
      hints: ['What was written stays readable: it is in the recordings library. The live session goes on.'],
    });
  }

  function dispose(): void {
    clearTimeout(poll);
  }

  return { library, live, refresh, toggle, upload, remove, bytes, download, follow, start, stop, onStreamStatus, dispose };
}

export type Recordings = ReturnType<typeof createRecordings>;

