/**
 * One client's outgoing queue (server/service/client-channel.ts) over a real socket.io server and
 * client: control messages waiting behind a slow connection are replaced by newer snapshots
 * without losing what only the older one carried.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Server } from 'socket.io';
import { ClientChannel, type ChannelLimits, type ServiceSocket } from '../../server/service/client-channel.js';
import type { ClientToServerEvents, ServerToClientEvents, TopologyMessage } from '../../shared/stream-events.js';
import type { Topology } from '../../shared/topology/model.js';
import { connect, waitFor, type TestSocket } from './helpers.js';

describe('ClientChannel', () => {
  const http = createServer();
  const io = new Server<ClientToServerEvents, ServerToClientEvents>(http, { serveClient: false });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => { void io.close(() => resolve()); });
  });

  it('should keep the waiting model when a names-only topology message replaces it', async () => {
    const serverSide = new Promise<ServiceSocket>((resolve) => io.once('connection', (s) => resolve(s)));
    const client: TestSocket = await connect(url);
    const socket = await serverSide;
    const got: TopologyMessage[] = [];
    client.on('topology', (m) => got.push(m));
    // Nothing may be handed to socket.io yet: the messages wait in the channel's queue, as behind a slow connection.
    const limits: { -readonly [K in keyof ChannelLimits]: ChannelLimits[K] } = { maxBatches: 8, maxBytes: 1 << 20, maxEnginePackets: 0 };
    const channel = new ClientChannel(socket, limits);
    const model: Topology = { namespaces: [], errors: [], discoveredAt: 42, durationMs: 1 };
    channel.sendTopology({ namespaces: [{ netns: 1, name: 'a' }], model, changes: { added: ['a'], removed: [], changed: [] } });
    channel.sendTopology({ namespaces: [{ netns: 1, name: 'a' }, { netns: 2, name: 'b' }] });
    // The connection drains again.
    limits.maxEnginePackets = 8;
    channel.sendStats({ session: 's', at: 0, eventsPerSec: 0, sourceLagMs: 0, events: 0, lostKernel: 0, seq: 0, droppedBatches: 0, queuedBatches: 0, bpftrace: { state: 'running', pid: null, restarts: 0 } });
    await waitFor('the topology message', () => got.length > 0, 5000);
    await new Promise((r) => setTimeout(r, 100));
    // One message: the newest names, with the model that was waiting.
    expect(got).toHaveLength(1);
    expect(got[0]?.namespaces.map((n) => n.name)).toEqual(['a', 'b']);
    expect(got[0]?.model?.discoveredAt).toBe(42);
    expect(got[0]?.changes?.added).toEqual(['a']);
    channel.close();
    client.close();
  });
});
