/**
 * The service started where it cannot trace, for the "not root" browser test:
 * `setpriv --inh-caps=-all --bounding-set=-all -- node --import tsx web/e2e/serve-unprivileged.ts DIST DATA`
 * (uid 0, no capabilities: what a container or a dropped privilege leaves) serves the
 * dashboard build in DIST with recordings in DATA on a free loopback port, prints
 * `{"url": …}` once listening, and stops on SIGTERM or when stdin closes (its parent died).
 */
import { startService } from '../../server/service/index.js';

const [webDist, dataDir] = process.argv.slice(2);
if (!webDist || !dataDir) {
  process.stderr.write('usage: serve-unprivileged.ts DIST DATA\n');
  process.exit(2);
}
const service = await startService({ port: 0, webDist, dataDir, log: () => undefined });
process.stdout.write(`${JSON.stringify({ url: service.url })}\n`);
const stop = (): void => {
  void service.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
