/**
 * Test traffic between lab namespaces: small echo servers and senders run with Node itself
 * inside a namespace (`ip netns exec NS node -e AGENT -- args`). The agent program is a
 * constant; addresses and ports reach it as argv, never as program text.
 */
import { execa, type ResultPromise } from 'execa';

const AGENT = String.raw`
const [op, a1, a2, a3, a4, a5] = process.argv.slice(1);
const dgram = require('node:dgram'), net = require('node:net');
const fam = (h) => (h.includes(':') ? 'udp6' : 'udp4');
if (op === 'udp-echo') {
  const s = dgram.createSocket(fam(a1));
  s.on('message', (m, r) => s.send(m, r.port, r.address));
  s.bind(Number(a2), a1, () => console.log('listening'));
} else if (op === 'tcp-echo') {
  net.createServer((c) => c.pipe(c)).listen(Number(a2), a1, () => console.log('listening'));
} else if (op === 'udp-send') {
  const [dst, port, count, size, gapMs] = [a1, Number(a2), Number(a3), Number(a4), Number(a5)];
  const s = dgram.createSocket(fam(dst));
  let replies = 0, sent = 0;
  s.on('message', () => { replies++; });
  const buf = Buffer.alloc(size, 120);
  const next = () => {
    if (sent >= count) { setTimeout(() => { console.log(JSON.stringify({ sent, replies })); s.close(); }, 200); return; }
    sent++;
    s.send(buf, port, dst, () => (gapMs > 0 ? setTimeout(next, gapMs) : setImmediate(next)));
  };
  s.bind(0, () => next());
} else if (op === 'tcp-send') {
  const [dst, port, bytes] = [a1, Number(a2), Number(a3)];
  let got = 0;
  const c = net.connect({ host: dst, port, timeout: 3000 }, () => c.end(Buffer.alloc(bytes, 121)));
  c.on('data', (d) => { got += d.length; });
  c.on('timeout', () => { console.log(JSON.stringify({ sent: bytes, replies: got, error: 'timeout' })); c.destroy(); });
  c.on('error', (e) => { console.log(JSON.stringify({ sent: bytes, replies: got, error: e.code })); });
  c.on('close', () => console.log(JSON.stringify({ sent: bytes, replies: got })));
} else {
  console.error('unknown op ' + op); process.exit(2);
}
`;

export interface SendResult {
  readonly sent: number;
  readonly replies: number;
  readonly error?: string;
}

export interface Server {
  stop(): Promise<void>;
}

function agent(ns: string, args: string[]): ResultPromise<{ reject: false }> {
  return execa('ip', ['netns', 'exec', ns, process.execPath, '-e', AGENT, '--', ...args.map(String)], { reject: false });
}

/** Starts an echo server for `proto` on host:port inside `ns`; resolves once it listens. */
export async function startEcho(ns: string, proto: 'udp' | 'tcp', host: string, port: number): Promise<Server> {
  const child = agent(ns, [`${proto}-echo`, host, String(port)]);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`echo server in ${ns} did not start`)), 10_000);
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) { clearTimeout(timer); resolve(); }
    });
    void child.then((r) => { clearTimeout(timer); reject(new Error(`echo server in ${ns} exited: ${String(r.stderr).slice(0, 300)}`)); });
  });
  return {
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}

/** Sends `count` UDP datagrams of `size` bytes from `ns` to dst:port, `gapMs` apart. */
export async function sendUdp(ns: string, dst: string, port: number, count = 1, size = 32, gapMs = 0): Promise<SendResult> {
  const r = await agent(ns, ['udp-send', dst, String(port), String(count), String(size), String(gapMs)]);
  return parseResult(r.stdout, r.stderr);
}

/** Opens a TCP connection from `ns` to dst:port, sends `bytes` and closes. */
export async function sendTcp(ns: string, dst: string, port: number, bytes = 64): Promise<SendResult> {
  const r = await agent(ns, ['tcp-send', dst, String(port), String(bytes)]);
  return parseResult(r.stdout, r.stderr);
}

/** Pings dst from ns (iputils-ping); resolves with the number of replies. */
export async function ping(ns: string, dst: string, count = 1): Promise<SendResult> {
  const r = await execa('ip', ['netns', 'exec', ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '1', dst], { reject: false });
  const m = /(\d+) received/.exec(String(r.stdout));
  return { sent: count, replies: m ? Number(m[1]) : 0 };
}

function parseResult(stdout: unknown, stderr: unknown): SendResult {
  const line = String(stdout).trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as SendResult;
  } catch {
    return { sent: 0, replies: 0, error: String(stderr).slice(0, 300) || 'no result' };
  }
}
