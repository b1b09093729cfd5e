/** `agent` and `serve --hub` refuse bad input in one sentence, exit 2, before touching the kernel. */
import { describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';

describe('agent and serve --hub usage', () => {
  it.each([
    [['agent'], /agent needs --hub/],
    [['agent', '--hub', 'nats://127.0.0.1:4222'], /agent needs --node/],
    [['agent', '--hub', 'nats://127.0.0.1:4222', '--node', 'a.b'], /node name must be .* got 'a\.b'/],
    [['agent', '--hub', 'http://x', '--node', 'n1'], /expected a nats:\/\/ or tls:\/\/ URL/],
    [['agent', '--hub', 'nats://127.0.0.1:4222', '--node', 'n1', '--namespaces', 'x;rm -rf'], /--namespaces: 'x;rm -rf' is not a namespace name/],
    [['agent', '--hub', 'nats://127.0.0.1:4222', '--node', 'n1', '--topology-every', 'soon'], /--topology-every must be 1-3600 seconds, got 'soon'/],
    [['agent', '--hub', 'nats://127.0.0.1:4222', '--node', 'n1', '--topology-every', '0.5'], /--topology-every must be 1-3600 seconds, got '0\.5'/],
    [['serve', '--filter', 'udp'], /options of --hub/],
    [['serve', '--hub', 'nats://127.0.0.1:4222', '--durable', 'a.b'], /--durable must be/],
    // A pod name is taken (it resolves once a node that has the pod is known): the next thing is the bus.
    [['serve', '--port', '0', '--hub', 'nats://127.0.0.1:1', '--filter', 'udp and pod web'], /cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/],
  ])('%j', async (args, message) => {
    const r = await cli(args);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  }, 60_000);

  it('a NATS server that is not there is one sentence', async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const r = await cli(['serve', '--port', '0', '--hub', 'nats://127.0.0.1:1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
  }, 60_000);
});
