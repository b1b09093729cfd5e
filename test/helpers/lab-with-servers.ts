import { beforeAll, afterAll } from 'vitest';
import { labFor, labUp, labDown, type Lab } from '../../server/lab/lab.js';
import { startLabServers } from '../../server/lab/rounds.js';
import type { Server } from '../../server/lab/traffic.js';
import { labInodes, randomPrefix } from './cli.js';

/** The demo lab with its echo servers, brought up once for a describe block. */
export interface LabWithServers {
  /** The lab (set once beforeAll has run). */
  readonly lab: Lab;
  /** Each lab namespace's inode → its role (pod1, node, …), to name hops in assertions. */
  readonly roles: Map<number, string>;
}

/**
 * Registers beforeAll/afterAll in the calling describe block: the demo lab under a random
 * name starting with `prefix` (so parallel files and a killed run's leftovers never collide),
 * its echo servers, and on the way out the servers stopped and the lab taken down.
 */
export function useLabWithServers(prefix: string): LabWithServers {
  let lab: Lab | undefined;
  let roles: Map<number, string> | undefined;
  let servers: Server[] = [];

  beforeAll(async () => {
    lab = labFor(randomPrefix(prefix));
    await labUp(lab);
    servers = await startLabServers(lab);
    roles = labInodes(lab);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    if (lab) await labDown(lab);
  });

  return {
    get lab(): Lab {
      if (!lab) throw new Error('the lab is not up: use it inside a test, after beforeAll');
      return lab;
    },
    get roles(): Map<number, string> {
      if (!roles) throw new Error('the lab is not up: use it inside a test, after beforeAll');
      return roles;
    },
  };
}
