/**
 * A /cluster client's outgoing queue on a hub (server/service/cluster-channel.ts) over a real
 * socket.io server and client: packets a slow client cannot take are dropped oldest first and
 * counted — for the client (its `stream` state) and for the hub (`streamDrops`) — instead of
 * vanishing unseen as volatile emits did; the view is latest-wins, `session-ended` never dropped.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server, type Socket } from 'socket.io';
import { io as ioClient, type Socket as ClientSocket } from 'socket.io-client';
import { ClusterChannel, type ClusterChannelLimits, type StreamDrops } from '../../server/service/cluster-channel.js';
import { waitFor } from './helpers.js';

describe('ClusterChannel', () => {
  const http = createServer();
  const io = new Server(http, { serveClient: false });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/cluster`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => { void io.close(() => resolve()); });
  });

  const pair = async (): Promise<{ socket: Socket; client: ClientSocket }> => {
    const serverSide = new Promise<Socket>((resolve) => io.of('/cluster').once('connection', (s) => resolve(s)));
    const client = ioClient(url, { transports: ['websocket'], forceNew: true });
    return { socket: await serverSide, client };
  };

  it('should drop the oldest lots for a client that does not keep up, count them, and send the rest in order', async () => {
    const { socket, client } = await pair();
    const lots: number[][] = [];
    const ended: unknown[] = [];
    const views: Array<{ n: number }> = [];
    client.on('packets', (p: Array<{ n: number }>) => lots.push(p.map((x) => x.n)));
    client.on('session-ended', (m: unknown) => ended.push(m));
    client.on('cluster', (v: { n: number }) => views.push(v));
    // The connection takes nothing (as a stalled one): everything waits in the channel.
    const limits: { -readonly [K in keyof ClusterChannelLimits]: ClusterChannelLimits[K] } = { maxLots: 3, maxPackets: 100, maxEnginePackets: 0 };
    const totals: StreamDrops = { packets: 0, lots: 0 };
    const ch = new ClusterChannel(socket, limits, totals);
    for (let i = 1; i <= 5; i++) ch.sendPackets('s1', [{ n: i * 10 }, { n: i * 10 + 1 }]);
    ch.sendControl('session-ended', { session: 's1' });
    ch.sendView(() => ({ n: 1 }));
    ch.sendView(() => ({ n: 2 }));
    // Lots 1 and 2 (4 packets) did not fit.
    expect(ch.state('s1')).toEqual({ session: 's1', droppedPackets: 4, droppedLots: 2, queuedPackets: 6 });
    expect(totals).toEqual({ packets: 4, lots: 2 });
    // The connection drains again; a newer view goes first, replacing the waiting one.
    limits.maxEnginePackets = 8;
    ch.sendView(() => ({ n: 3 }));
    await waitFor('the packets', () => lots.length === 3 && ended.length === 1);
    ch.sendPackets('s1', [{ n: 60 }]);
    await waitFor('the next lot', () => lots.length === 4);
    expect(lots).toEqual([[30, 31], [40, 41], [50, 51], [60]]);
    expect(views).toEqual([{ n: 3 }]);
    expect(ch.state('s1')).toMatchObject({ droppedPackets: 4, queuedPackets: 0 });
    ch.close();
    client.close();
  });

  it('should drop by packets too, keep at least the newest lot, and forget a session\'s queue when the client leaves it', async () => {
    const { socket, client } = await pair();
    const totals: StreamDrops = { packets: 0, lots: 0 };
    const ch = new ClusterChannel(socket, { maxLots: 100, maxPackets: 7, maxEnginePackets: 0 }, totals);
    ch.sendPackets('s1', [1, 2, 3]);
    ch.sendPackets('s1', [4, 5, 6, 7, 8, 9]);
    expect(ch.state('s1')).toEqual({ session: 's1', droppedPackets: 3, droppedLots: 1, queuedPackets: 6 });
    ch.sendPackets('s2', [1]);
    ch.forget('s1');
    expect(ch.state('s1')).toEqual({ session: 's1', droppedPackets: 0, droppedLots: 0, queuedPackets: 0 });
    expect(ch.state('s2').queuedPackets).toBe(1);
    // The hub's total stays: those packets were lost for that client.
    expect(totals.packets).toBe(3);
    ch.close();
    client.close();
  });
});
