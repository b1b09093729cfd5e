/**
 * The demo lab's background traffic: echo servers in the lab, then one round of every kind of lab
 * traffic (server/lab/rounds.ts: pod→pod, pod→ext through MASQUERADE with a reply, ext→node:8080
 * DNAT into pod2, a datagram FORWARD drops, pod→pod over IPv6) about every second until stopped.
 * Used by `serve --lab demo` and the lab command.
 */
import type { Lab } from './lab.js';
import { startLabServers, trafficRound } from './rounds.js';

export interface DemoTraffic {
  /** Stops the loop after the round in progress and stops the echo servers. */
  stop(): Promise<void>;
  /** Rounds completed so far. */
  readonly rounds: number;
  /** Resolves once the echo servers listen (rejects if they cannot start). */
  readonly ready: Promise<void>;
}

export interface DemoTrafficOptions {
  /** Pause between rounds. Default 1000 ms. */
  readonly intervalMs?: number;
  /** Called when a round fails (the loop goes on). */
  readonly onError?: (err: unknown) => void;
}

/** Starts at once; the first round goes out when the echo servers listen. */
export function startDemoTraffic(lab: Lab, options: DemoTrafficOptions = {}): DemoTraffic {
  const interval = options.intervalMs ?? 1000;
  const servers = startLabServers(lab);
  servers.catch((err: unknown) => options.onError?.(err));
  const ready = servers.then(() => undefined);
  ready.catch(() => undefined);
  let stopped = false;
  let rounds = 0;
  let wake: (() => void) | undefined;
  const loop = (async () => {
    try {
      await servers;
    } catch {
      return;
    }
    while (!stopped) {
      try {
        await trafficRound(lab);
        rounds++;
      } catch (err) {
        options.onError?.(err);
      }
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, interval);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  })();
  return {
    get rounds() {
      return rounds;
    },
    ready,
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      const started = await servers.catch(() => []);
      await Promise.all(started.map((s) => s.stop()));
    },
  };
}
