/**
 * server/output-pump.ts: bpftrace's output read by a worker thread through a FIFO, so a busy main
 * thread never stalls the writer. Real FIFO, real writer process: every line arrives in order
 * when the main thread keeps up; when it is more than the cap behind, whole lines are dropped and
 * counted, never cut.
 */
import { describe, it, expect } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { execa } from 'execa';
import { OutputPump, PIPE_BYTES } from '../../server/output-pump.js';

/** Writes `n` numbered lines to `fd` from a child process; resolves with its exit code and how long it took. */
function writer(fd: number, n: number): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  const child = spawn('seq', ['-f', 'line %06g of the pump test', '1', String(n)], { stdio: ['ignore', fd, 'ignore'] });
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, ms: Date.now() - t0 })));
}

describe('output pump', () => {
  it('should pass every line on, whole and in order', async () => {
    const lines: string[] = [];
    let dropped = 0;
    const pump = await OutputPump.open({ onText: (t) => lines.push(...t.split('\n').slice(0, -1)), onDropped: (n) => { dropped += n; } });
    const w = writer(pump.fd, 200_000);
    pump.handedOver();
    expect((await w).code).toBe(0);
    await pump.done;
    await pump.close();
    expect(dropped).toBe(0);
    expect(lines).toHaveLength(200_000);
    expect(lines[0]).toBe('line 000001 of the pump test');
    expect(lines.at(-1)).toBe('line 200000 of the pump test');
    expect(lines.every((l, i) => l === `line ${String(i + 1).padStart(6, '0')} of the pump test`)).toBe(true);
    expect(existsSync(pump.fifo)).toBe(false);
  });

  it('should let the writer finish while the main thread is blocked, then drop and count whole lines beyond the cap', async () => {
    const lines: string[] = [];
    let dropped = 0;
    // 64 KiB may wait: about 2,300 of these lines.
    const pump = await OutputPump.open({ onText: (t) => lines.push(...t.split('\n').slice(0, -1)), onDropped: (n) => { dropped += n; } }, 64 * 1024);
    const w = writer(pump.fd, 100_000);
    pump.handedOver();
    // The main thread busy for 1.5 s: with a plain pipe the writer would wait on us all along.
    const until = Date.now() + 1500;
    while (Date.now() < until) { /* busy, as a main thread parsing a burst is */ }
    const done = await w;
    expect(done.code).toBe(0);
    await pump.done;
    await pump.close();
    expect(dropped).toBeGreaterThan(0);
    expect(lines.length + dropped).toBe(100_000);
    // Never a cut line: every line that arrived is one the writer wrote.
    expect(lines.every((l) => /^line \d{6} of the pump test$/.test(l))).toBe(true);
  });

  /** The pipe buffer of our descriptor `fd`, as the kernel reports it (F_GETPIPE_SZ). */
  const pipeSize = async (fd: number): Promise<number> => Number((await execa('perl', ['-e', 'open(my $f, "+<", $ARGV[0]) or die; print fcntl($f, 1032, 0 + 0) + 0', `/proc/${process.pid}/fd/${fd}`])).stdout);

  it('should give the FIFO a 4 MiB kernel buffer (pipe-max-size without CAP_SYS_RESOURCE), or the default when asked for none', async () => {
    const big = await OutputPump.open({ onText: () => undefined, onDropped: () => undefined });
    const plain = await OutputPump.open({ onText: () => undefined, onDropped: () => undefined }, undefined, 0);
    try {
      const max = Number(readFileSync('/proc/sys/fs/pipe-max-size', 'utf8'));
      const capSysResource = (BigInt(`0x${/CapEff:\s*(\w+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0'}`) >> 24n) & 1n;
      const expected = capSysResource ? PIPE_BYTES : Math.min(PIPE_BYTES, max);
      expect(big.pipeBytes).toBe(expected);
      expect(await pipeSize(big.fd)).toBe(expected);
      expect(expected).toBeGreaterThan(65536);
      expect(plain.pipeBytes).toBeNull();
      expect(await pipeSize(plain.fd)).toBe(65536);
    } finally {
      await big.close();
      await plain.close();
    }
  });
});
