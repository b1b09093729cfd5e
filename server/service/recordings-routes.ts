/**
 * The recordings routes under /api: a session's recording (start, stop: recording-manager.ts) and
 * the recordings library on disk (list, download, upload validated before it is stored, delete:
 * server/recording/library.ts). Status codes and bodies are in server/service/README.md.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import express, { type Request, type Router } from 'express';
import type { RecordingList } from '../../shared/api-types.js';
import { StartRecordingRequest, UploadRecordingQuery } from '../../shared/api-types.js';
import {
  deleteRecording, libraryName, listEntries, openRecording, readMetaOrProblem, recordingEntry, storeRecording, StoreError,
} from '../recording/index.js';
import { sessionParam } from './api.js';
import { ApiError, ClientGoneError, allowOnly } from './errors.js';
import { pathFor, type RecordingManager } from './recording-manager.js';
import type { SessionRegistry } from './sessions.js';

export const DEFAULT_MAX_UPLOAD_BYTES = 256 * 1024 * 1024;

function tooLarge(max: number): ApiError {
  return new ApiError(413, 'payload-too-large', `the upload is larger than this service accepts (${Math.round((max / 1024 / 1024) * 100) / 100} MiB)`);
}

/**
 * Writes a request body to a new file, at most `max` bytes. Past that it stops reading and
 * rejects with 413; the request is left paused (not destroyed, which would take the socket and
 * the answer with it): the caller answers with Connection: close.
 */
function receiveBody(req: Request, file: string, max: number): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const out = createWriteStream(file, { flags: 'wx', mode: 0o640 });
    let seen = 0;
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      req.unpipe(out);
      req.pause();
      out.destroy();
      reject(err instanceof Error ? err : new Error(String(err)));
    };
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen > max) fail(tooLarge(max));
    });
    req.on('aborted', () => fail(new ClientGoneError('the client went away during the upload')));
    // An error on the request is the connection failing under it (reset, aborted): the client's side.
    req.on('error', () => fail(new ClientGoneError('the client went away during the upload')));
    out.on('error', fail);
    out.on('finish', () => { if (!failed) resolvePromise(); });
    req.pipe(out);
  });
}

export interface RecordingsRouterDeps {
  readonly manager: RecordingManager;
  readonly registry: SessionRegistry;
  readonly maxUploadBytes: number;
}

/** Routes under /api: a session's recording, and the recordings library. Mount before apiRouter (its catch-all 404). */
/** Routes under /api: a session's recording, and the recordings library. Mount before apiRouter (its catch-all 404). */
/** A start-recording request's body (the hub's routes take the same); no body (or an empty one) lets the server pick the name. */
export function startRecordingBody(req: Request): { name?: string | undefined } {
  const type = req.is('application/json');
  if (!type && (Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined)) {
    throw new ApiError(400, 'bad-request', 'send the body as JSON (Content-Type: application/json), e.g. {"name": "before-fix"}');
  }
  return StartRecordingRequest.parse(type ? (req.body ?? {}) : {});
}

export function recordingsRouter(deps: RecordingsRouterDeps): Router {
  const { manager, registry } = deps;
  const router = express.Router();
  const json = express.json({ limit: '16kb', strict: true });

  router.post('/sessions/:id/recording', json, async (req, res) => {
    const session = sessionParam(registry, req);
    manager.requireDataDir();
    const body = startRecordingBody(req);
    registry.touch(session);
    const status = await manager.start(session, body.name);
    res.status(201).location(`/api/recordings/${encodeURIComponent(status.name)}`).json(status);
  });

  router.delete('/sessions/:id/recording', async (req, res) => {
    const session = sessionParam(registry, req);
    registry.touch(session);
    res.json(await manager.stop(session));
  });

  router.get('/recordings', async (_req, res) => {
    const body: RecordingList = { recordings: await listEntries(manager.requireDataDir(), manager.runningByPath()) };
    res.json(body);
  });

  router.get('/recordings/:name', async (req, res) => {
    const path = pathFor(manager.requireDataDir(), req.params.name);
    const file = await openRecording(path);
    if (!file) throw new ApiError(404, 'not-found', `no recording '${libraryName(path)}'`);
    const { fh, size } = file;
    res.status(200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Content-Disposition', `attachment; filename="${basename(path)}"`);
    // A file being written grows: send what it held when asked (a valid prefix).
    res.setHeader('Content-Length', String(size));
    res.setHeader('Cache-Control', 'no-store');
    if (size === 0) {
      await fh.close();
      res.end();
      return;
    }
    // A client that goes away mid-download is no error of ours.
    await pipeline(createReadStream('', { fd: fh, start: 0, end: size - 1 }), res).catch(() => undefined);
  });

  router.post('/recordings', async (req, res) => {
    const dir = manager.requireDataDir();
    const { name } = UploadRecordingQuery.parse(req.query);
    const path = pathFor(dir, name);
    if (!req.is('application/octet-stream')) {
      throw new ApiError(400, 'bad-request', 'send the recording as the raw body (Content-Type: application/octet-stream)');
    }
    const encoding = (req.get('content-encoding') ?? 'identity').toLowerCase();
    if (encoding !== 'identity') {
      // Stored as it comes: compressed bytes would only fail validation as "not a recording".
      res.setHeader('Connection', 'close');
      throw new ApiError(415, 'unsupported-encoding', `send the recording uncompressed (no Content-Encoding; got ${encoding.slice(0, 20)})`);
    }
    const declared = Number(req.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > deps.maxUploadBytes) {
      // Not reading a body we refuse: close the connection once the answer is out.
      res.setHeader('Connection', 'close');
      throw tooLarge(deps.maxUploadBytes);
    }
    if (manager.isWriting(path) || existsSync(path)) {
      res.setHeader('Connection', 'close');
      throw new ApiError(409, 'conflict', `a recording named '${libraryName(path)}' already exists`);
    }
    try {
      await storeRecording(dir, path, async (tmp) => {
        try {
          await receiveBody(req, tmp, deps.maxUploadBytes);
        } catch (err) {
          // The body was not read to its end: the connection cannot carry another request.
          res.setHeader('Connection', 'close');
          throw err;
        }
      });
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      if (err.code === 'exists') throw new ApiError(409, 'conflict', err.message);
      if (err.code === 'no-space') throw new ApiError(507, 'recording-failed', err.message);
      throw new ApiError(400, 'bad-recording', err.message);
    }
    const entry = recordingEntry(path, await readMetaOrProblem(path), manager.runningByPath());
    res.status(201).location(`/api/recordings/${encodeURIComponent(entry.name)}`).json(entry);
  });

  router.delete('/recordings/:name', async (req, res) => {
    const path = pathFor(manager.requireDataDir(), req.params.name);
    const name = libraryName(path);
    if (manager.isWriting(path)) throw new ApiError(409, 'conflict', `recording '${name}' is being written: stop it first (DELETE /api/sessions/:id/recording)`);
    if (!(await deleteRecording(path))) throw new ApiError(404, 'not-found', `no recording '${name}'`);
    res.status(204).end();
  });

  allowOnly(router, '/sessions/:id/recording', ['POST', 'DELETE']);
  allowOnly(router, '/recordings', ['GET', 'POST']);
  allowOnly(router, '/recordings/:name', ['GET', 'DELETE']);
  return router;
}
