/**
 * `hoptrace lab`: the demo lab — namespaces for two pods on a bridge in a node namespace, SNAT to
 * an "external" namespace, a DNAT port-forward into a pod, and a traffic generator.
 */
import { labFor, labUp, labDown, labExists, labPrefixProblem } from '../lab/lab.js';
import { startLabServers, trafficRound } from '../lab/rounds.js';
import { runCommand, UsageError } from './common.js';

export const summary = 'build, drive or remove the demo lab (namespaces, bridge, NAT)';

const HELP = `usage: hoptrace lab up|down|traffic [--prefix P] [--rounds N]

  up        build the lab: namespaces P-node, P-pod1, P-pod2, P-ext (default prefix htdemo)
  down      remove them
  traffic   start echo servers and send N rounds (default 1) of each kind of lab traffic:
            pod→pod over the bridge, pod→ext through MASQUERADE, ext→node DNAT into a pod,
            a packet the FORWARD chain drops, and IPv6 over the bridge

Every address lives only inside the lab's namespaces; nothing routes out of them.`;

const OPTIONS = { prefix: { kind: 'string' }, rounds: { kind: 'number', integer: true, min: 1 } } as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP, positionals: true }, async (o, positionals) => {
    const [action, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    const prefixProblem = labPrefixProblem(o.prefix ?? 'htdemo');
    if (prefixProblem !== null) throw new UsageError(`--prefix: ${prefixProblem}`);
    const lab = labFor(o.prefix ?? 'htdemo');
    const rounds = o.rounds ?? 1;
    if (process.getuid?.() !== 0) throw new UsageError('the lab creates network namespaces: run it as root (sudo).');
    switch (action) {
      case 'up':
        if (await labExists(lab)) throw new UsageError(`a lab with prefix '${lab.prefix}' already exists: run \`hoptrace lab down --prefix ${lab.prefix}\` first`);
        await labUp(lab);
        process.stdout.write(`lab up: ${Object.values(lab.ns).join(', ')}\n`);
        return 0;
      case 'down':
        await labDown(lab);
        process.stdout.write(`lab down: ${lab.prefix}\n`);
        return 0;
      case 'traffic': {
        if (!(await labExists(lab))) throw new UsageError(`no lab with prefix '${lab.prefix}': run \`hoptrace lab up\` first`);
        const servers = await startLabServers(lab);
        try {
          for (let i = 0; i < rounds; i++) {
            for (const r of await trafficRound(lab)) {
              process.stdout.write(`${r.name}: sent ${r.result.sent}, replies ${r.result.replies}${r.result.error ? ` (${r.result.error})` : ''}\n`);
            }
          }
        } finally {
          await Promise.all(servers.map((s) => s.stop()));
        }
        return 0;
      }
      default:
        throw new UsageError(action === undefined ? 'lab needs an action: up, down or traffic' : `unknown lab action '${action}' (up, down, traffic)`);
    }
  });
}
