/**
 * A small watcher process that removes hoptrace's tracing tables if hoptrace dies without doing
 * it (SIGKILL, OOM): it runs detached (Ctrl-C to the terminal's process group does not reach it),
 * learns each table as it is added over a pipe, and when the pipe closes — hoptrace exited, by
 * whatever means — deletes those still registered, then exits. A normal stop unregisters the
 * tables it removed itself first, so the guardian has nothing left to do.
 *
 * The program is a constant; tables and namespace paths reach it as JSON lines, and it checks
 * them against the same patterns before running `nsenter --net=PATH nft delete table FAMILY NAME`
 * (FAMILY inet or bridge)
 * (argv only). A path is only used while it still names the namespace inode it was registered
 * with, so a reused name is never touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { TraceFamily } from '../../shared/netfilter/nft-filter.js';

const PROGRAM = String.raw`
const { execFileSync } = require('node:child_process');
const { statSync } = require('node:fs');
const TABLE = /^hoptrace(?:_\d{1,10}_\d{1,6})?$/;
const FAMILY = /^(?:inet|bridge)$/;
const PATH = /^(?:\/run\/netns\/[^/\0]+|\/proc\/\d+\/ns\/net)$/;
const tables = new Map();
let buf = '';
let done = false;
for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {});
function cleanup() {
  if (done) return;
  done = true;
  for (const m of tables.values()) {
    if (!TABLE.test(m.table) || !FAMILY.test(m.family) || !PATH.test(m.path) || m.path.includes('/../')) continue;
    try { if (statSync(m.path).ino !== m.ino) continue; } catch { continue; }
    try { execFileSync('nsenter', ['--net=' + m.path, 'nft', 'delete', 'table', m.family, m.table], { stdio: 'ignore', timeout: 10000 }); } catch {}
  }
  process.exit(0);
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (c) => {
  buf += c;
  for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
    const line = buf.slice(0, i);
    buf = buf.slice(i + 1);
    try {
      const m = JSON.parse(line);
      const family = m.family === undefined ? 'inet' : String(m.family);
      const key = m.path + ' ' + family + ' ' + m.table;
      if (m.op === 'add') tables.set(key, { path: String(m.path), family, table: String(m.table), ino: Number(m.ino) });
      else tables.delete(key);
    } catch {}
  }
});
process.stdin.on('end', cleanup);
process.stdin.on('error', cleanup);
`;

export class TableGuardian {
  private readonly child: ChildProcess;
  private readonly pipe: Writable | null;

  constructor() {
    this.child = spawn(process.execPath, ['-e', PROGRAM], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
    this.pipe = this.child.stdin;
    // Neither the process nor its pipe may keep hoptrace alive.
    this.child.unref();
    (this.pipe as unknown as { unref?: () => void } | null)?.unref?.();
    this.pipe?.on('error', () => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  add(path: string, netns: number, table: string, family: TraceFamily = 'inet'): void {
    this.pipe?.write(`${JSON.stringify({ op: 'add', path, ino: netns, table, family })}\n`);
  }

  remove(path: string, table: string, family: TraceFamily = 'inet'): void {
    this.pipe?.write(`${JSON.stringify({ op: 'del', path, table, family })}\n`);
  }

  /** Closes the pipe: the guardian removes whatever is still registered and exits. */
  close(): void {
    this.pipe?.end();
  }
}
