/** Traffic the real-lab tests send beyond what server/lab/traffic.ts offers. */

/** Sends `count` datagrams from each of the given source ports (fixed ports, so flows are known). */
export const MULTI_SENDER = String.raw`
const dgram = require('node:dgram');
const [src, dst, port, count, ...sports] = process.argv.slice(1);
let pending = sports.length;
for (const sp of sports) {
  const s = dgram.createSocket('udp4');
  let sent = 0;
  const next = () => {
    if (sent >= Number(count)) { s.close(); if (--pending === 0) console.log('done'); return; }
    sent++;
    s.send(Buffer.alloc(32, 120), Number(port), dst, () => setTimeout(next, 2));
  };
  s.bind(Number(sp), src, next);
}
`;
