/**
 * `hoptrace trace`: attach the hop probes, rebuild packets, print them as they complete.
 */
import { TraceSession, CannotTraceError } from '../trace-session.js';
import { MAX_SAMPLE } from '../../shared/api-types.js';
import { preflight } from '../preflight.js';
import { Reconstructor, vethPeers } from '../../shared/reconstruct.js';
import { formatPacket, packetJson, PacketNumbers } from '../../shared/format.js';
import type { Packet } from '../../shared/packet.js';
import { NamespaceNames } from '../topology/namespace-names.js';
import { listNamespaces } from '../topology/namespaces.js';
import { sharedWorkloadResolver } from '../topology/workloads.js';
import { withWorkloads, workloadTableOf } from '../../shared/workload-names.js';
import { TopologyWatcher } from '../topology/watch.js';
import { PathExpectations, type AnnotatedPacket } from '../../shared/expectation.js';
import { formatDivergence } from '../../shared/format.js';
import { runCommand, watchBpftrace, COUNT, DURATION, FILTER, HOPS, HOPS_HELP, JSON_OUTPUT, NETFILTER, NOTES, SAMPLE } from './common.js';
import { kernelNowNs } from '../clock.js';
import type { HopKind } from '../../shared/hop-event.js';
import { PacketNetfilterSteps } from '../netfilter/packet-steps.js';
import { detectNoteSupport } from '../capabilities.js';
import { resolveFilterText } from '../topology/workload-filter.js';

export const summary = 'follow packets through the kernel and print each one\'s hops';

const HELP = `usage: hoptrace trace [--filter EXPR] [--duration S] [--count N] [--sample N] [--hops LIST] [--json] [--no-model] [--netfilter] [--notes]

Attaches probes to the kernel's packet path (device transmit/receive, drops, frees) and prints,
for each packet, the hops it made across network namespaces.

  -f, --filter EXPR   pcap-like filter: host, src/dst host, net CIDR, port, src/dst port,
                      tcp, udp, icmp, icmp6, ip, ip6, and/or/not, parentheses; pod NAME and
                      container NAME (also src/dst pod...) mean that workload's addresses,
                      as they are when the trace starts.
                      A packet is shown when any of its hops matches; then all its hops are shown.
  -d, --duration S    stop after S seconds
  -c, --count N       stop after N packets
      --sample N      follow 1 in N flows (1 to ${MAX_SAMPLE}), picked in the kernel by a hash of
                      the flow on each packet's first hop, so a busy host stays traceable; a
                      sampled flow's packets keep all their hops. Counts are of sampled packets.
${HOPS_HELP}
      --json          one JSON object per packet per line (NDJSON); lines with "type":"lost"
                      report events the kernel lost, a last line "type":"summary" the totals.
                      Hops in a container's namespace carry "workload": its pod or container
                      name ("ns" stays the namespace's)
      --no-model      skip the topology model: no expected path, no divergence
      --netfilter     also name the netfilter rules each packet met (nft rule trace in every
                      namespace: temporary tables inet/bridge hoptrace_*, removed on exit); drops name
                      the rule that dropped, NAT the rule that rewrote. Without --filter at most
                      100 packets/s per namespace are traced, with one 1000.
      --notes         also show what explains each hop: the route lookup (table, device), bridge
                      MAC learning, time in a qdisc, waits for neighbour resolution, the ICMP
                      error a drop caused; on kernels with kprobes also netfilter hook verdicts
                      and times, bridge forwarding decisions, veth peer drops, NAT rewrites
  -h, --help          this help

Prints "ready" on stderr once the probes are attached. Ctrl-C detaches and prints what was collected.`;


const OPTIONS = {
  filter: FILTER, duration: DURATION, count: COUNT, json: JSON_OUTPUT, 'no-model': { kind: 'boolean' },
  netfilter: NETFILTER, notes: NOTES, sample: SAMPLE, hops: HOPS,
} as const;

export function run(argv: string[]): Promise<number> {
  return runCommand(argv, { options: OPTIONS, help: HELP }, async (o) => trace({
    filter: await resolvedFilter(o.filter ?? ''), duration: o.duration, count: o.count, sample: o.sample ?? 1, hops: o.hops, json: o.json, model: !o['no-model'],
    netfilter: o.netfilter, notes: o.notes,
  }));
}

interface TraceOptions {
  readonly filter: string;
  readonly duration?: number | undefined;
  readonly count?: number | undefined;
  /** Follow 1 in this many flows (1: all). */
  readonly sample: number;
  /** Hop kinds to attach (`--hops`); undefined: all. */
  readonly hops?: ReadonlySet<HopKind> | undefined;
  readonly json: boolean;
  /** Compare each packet with the path the topology model expects. */
  readonly model: boolean;
  /** Attach the netfilter rules each packet met (server/netfilter). */
  readonly netfilter?: boolean;
  /** Attach the notes tier (probes/notes/, and probes/deep/ where kprobes work). */
  readonly notes?: boolean;
}

/** Workload names without a topology model: the resolver alone (cgroups, then the runtimes). */
async function workloadsNow(say: (notes: Iterable<string | undefined>) => void): Promise<Map<number, string>> {
  const entries = await listNamespaces().catch(() => []);
  const host = entries.find((e) => e.name === 'host')?.netns ?? null;
  const found = await sharedWorkloadResolver.resolve(entries, host).catch(() => new Map<number, { label: string | null; note?: string }>());
  say([...found.values()].map((w) => w.note));
  return new Map([...found].filter((e): e is [number, { label: string }] => e[1].label !== null).map(([netns, w]) => [netns, w.label]));
}

/** Says each reason workload names are missing once (a hanging runtime, a missing crictl...). */
function workloadNoteSayer(): (notes: Iterable<string | undefined>) => void {
  const said = new Set<string>();
  return (notes) => {
    for (const n of notes) {
      if (n === undefined || said.has(n)) continue;
      said.add(n);
      process.stderr.write(`hoptrace: some namespaces are not named by their containers: ${n}\n`);
    }
  };
}

async function trace(opts: TraceOptions): Promise<number> {
  const noteSupport = opts.notes ? await detectNoteSupport() : undefined;
  const session = new TraceSession({
    filter: opts.filter,
    sampleRate: opts.sample,
    ...(opts.hops ? { hops: opts.hops } : {}),
    ...(noteSupport ? { notes: true, deep: noteSupport.deep, missingTracepoints: noteSupport.missingTracepoints } : {}),
  });
  for (const n of noteSupport?.notes ?? []) process.stderr.write(`hoptrace: ${n}\n`);
  session.on('warning', (w) => process.stderr.write(`hoptrace: ${w}\n`));
  // Fail fast (not root, no bpftrace…) before spending time on the topology model.
  const pre = await preflight();
  if (!pre.ok) throw new CannotTraceError(pre.problems);
  const names = new NamespaceNames();
  // The engine's newest hop time stamps topology changes (the engine is made below).
  let hopClock = (): number => 0;
  const watcher = opts.model ? new TopologyWatcher({ hopClock: () => hopClock() }) : undefined;
  let expectations: PathExpectations | undefined;
  const [, topology] = await Promise.all([names.refresh(), watcher?.start()]);
  // Pod and container names of the namespaces, following the model as containers come and go
  // (without the model: read once, now, within the resolver's deadline).
  const sayWorkloadNotes = workloadNoteSayer();
  sayWorkloadNotes((topology?.namespaces ?? []).map((n) => n.workloadNote));
  let workloads = topology ? workloadTableOf(topology) : await workloadsNow(sayWorkloadNotes);
  // The simulator failing on one packet leaves it without an expectation; say so once, never end the trace.
  if (topology) expectations = new PathExpectations(topology, undefined, (m) => process.stderr.write(`hoptrace: ${m}\n`));
  // Which namespace each veth leads to: a packet that shows up elsewhere is another one (issue 13).
  let peers = topology ? vethPeers(topology) : undefined;
  // A changed host keeps the connections the model follows (NATed replies stay on their path).
  watcher?.on('change', (c) => {
    // Names of namespaces that went away stay (their packets may still be in flight); a namespace
    // the model has now is named by the model alone: inodes are reused, a new namespace must not
    // inherit a gone container's name.
    const now = new Set(c.topology.namespaces.map((n) => n.netns));
    workloads = new Map([...[...workloads].filter(([netns]) => !now.has(netns)), ...workloadTableOf(c.topology)]);
    sayWorkloadNotes(c.topology.namespaces.map((n) => n.workloadNote));
    expectations = expectations ? expectations.withTopology(c.topology, c.sinceNs) : new PathExpectations(c.topology, undefined, (m) => process.stderr.write(`hoptrace: ${m}\n`));
    peers = vethPeers(c.topology);
  });
  let printed = 0;
  // A clone names its original by the number it was printed with.
  const numbers = new PacketNumbers();
  let outputClosed = false;
  process.stdout.on('error', () => {
    // The reader went away (e.g. `| head`): stop quietly.
    outputClosed = true;
    finish('output closed');
  });

  const emit = (packets: Packet[]): void => {
    for (const raw of packets) {
      // A namespace or interface the model has not seen: refresh it (a lookup when known).
      if (watcher && !nf) for (const h of raw.hops) watcher.noteUnknown(h.netns, h.ifname);
      const annotated: AnnotatedPacket | undefined = expectations?.annotate(raw);
      const p: Packet = withWorkloads(annotated ?? raw, workloads);
      if (outputClosed || (opts.count !== undefined && printed >= opts.count)) return;
      printed++;
      const divergence = annotated?.divergence ? `\n${formatDivergence(annotated.divergence.summary)}` : '';
      process.stdout.write(opts.json ? `${packetJson(p)}\n` : `${formatPacket(p, numbers.next(p.id), numbers.of)}${divergence}\n\n`);
      if (opts.count !== undefined && printed >= opts.count) finish('count reached');
    }
  };

  let finishResolve: (reason: string) => void = () => undefined;
  const finished = new Promise<string>((resolve) => { finishResolve = resolve; });
  function finish(reason: string): void {
    finishResolve(reason);
  }

  const bpftrace = watchBpftrace(session, () => finish('bpftrace exited'));
  // Losses come in bursts of reports: tell the user once a second, with the total so far.
  let lostPending = 0;
  session.on('lost', (n) => { lostPending += n; });
  const reportLost = (): void => {
    if (lostPending === 0) return;
    process.stderr.write(`hoptrace: the kernel lost ${lostPending} events (perf buffer full, ${session.lostEvents} in all); packets around them may miss hops\n`);
    if (opts.json && !outputClosed) process.stdout.write(`${JSON.stringify({ type: 'lost', events: lostPending, total: session.lostEvents })}\n`);
    lostPending = 0;
  };
  const lostTimer = setInterval(reportLost, 1000);

  // `on`, not `once`: execa's exit hook re-raises a signal nobody else listens to, killing
  // bpftrace before we could stop it cleanly and print what was collected.
  const onSignal = (): void => finish('interrupted');
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const nf = opts.netfilter ? new PacketNetfilterSteps() : undefined;
  nf?.on('warning', (w) => process.stderr.write(`hoptrace: ${w}\n`));
  try {
    // Let both starts finish before judging: stopping one that is still starting would leave
    // it attached once its start completes.
    const started = await Promise.allSettled([session.start(), nf?.start(session.filterAst)]);
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  } catch (err) {
    // Whichever failed, the other may be attached: take both down before reporting, and leave
    // nothing behind that keeps the process alive (a failed start used to hang on the timer,
    // deaf to Ctrl-C, since the signal handlers only resolve `finished`).
    await Promise.allSettled([session.stop(), nf?.stop()]);
    clearInterval(lostTimer);
    watcher?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    throw err;
  }
  // Reconstruction needs the drop-reason table, which start() loaded.
  const rec = new Reconstructor({
    nsName: names.name,
    dropReason: session.dropReasons.name,
    accept: session.accepts,
    isLocal: (netns, addr) => expectations?.isLocal(netns, addr) ?? false,
    peerNetns: (netns, ifname) => peers?.(netns, ifname) ?? null,
  });
  hopClock = () => rec.newestEventT;
  if (nf) {
    // The rule trace is set up in a namespace when its first hop shows up: it needs every event
    // as it comes (the session pushes each one into the engine after this listener).
    session.on('hop', (ev) => {
      watcher?.noteUnknown(ev.netns, ev.ifname);
      nf.noteNetns(ev.netns);
    });
  }
  // Hop lines go straight into the engine, no event objects (bench/pipeline.ts), unless a
  // listener above needs the events.
  session.reconstructInto(rec);
  session.on('note', (n) => rec.pushNote(n));
  // Said before "ready" and with the totals: counts of a sampled trace are not of all packets.
  const sampling = opts.sample > 1 ? ` (sampled: 1 in ${opts.sample} flows)` : '';
  if (sampling) process.stderr.write(`hoptrace: following 1 in ${opts.sample} flows, chosen in the kernel by flow hash\n`);
  process.stderr.write('ready\n');

  const tick = setInterval(() => {
    // On the events' own clock while they arrive: a trace seconds behind must not release past
    // the hops still in its pipe on the wall clock (they would come out split).
    rec.advance(rec.idleClock(kernelNowNs()));
    emit(nf ? nf.pass(rec.drain()) : rec.drain());
  }, 100);
  const timer = opts.duration !== undefined ? setTimeout(() => finish('duration reached'), opts.duration * 1000) : undefined;

  await finished;
  clearInterval(tick);
  clearInterval(lostTimer);
  if (timer) clearTimeout(timer);
  await session.stop();
  watcher?.stop();
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // What was collected is printed even after Ctrl-C or a dying bpftrace.
  emit(nf ? await nf.finish(rec.flush()) : rec.flush());
  await nf?.stop();
  reportLost();
  const s = rec.stats;
  // Events a CPU's buffer delivered after the reorder window: placed last in their packet, so
  // that packet's hop order may be off. Rare (bpftrace drains its per-CPU buffers within
  // milliseconds), and said rather than hidden.
  const late = s.late > 0 ? `, ${s.late} arrived too late to be put in time order (reorder window widened to ${Math.round(s.widestWindowNs / 1e6)} ms)` : '';
  // An skb address that carried a new packet before the free of the one it carried was seen
  // (TCP frees without a tracepoint): told apart rather than joined (issue 13), and counted.
  const splits = s.splits > 0 ? `, ${s.splits} split where an skb was reused before its free was seen` : '';
  process.stderr.write(`hoptrace: ${printed} packets, ${s.events} hop events, ${session.lostEvents} lost in the kernel${late}${splits}${sampling}\n`);
  if (opts.json && !outputClosed) {
    process.stdout.write(`${JSON.stringify({ type: 'summary', packets: printed, events: s.events, lost: session.lostEvents, late: s.late, splits: s.splits, reorderWindowMs: Math.round(s.widestWindowNs / 1e6) })}\n`);
  }
  return bpftrace.report();
}

/** `pod NAME` / `container NAME` resolved to the workload's addresses now; says what they became. */
async function resolvedFilter(text: string): Promise<string> {
  const resolved = await resolveFilterText(text);
  if (resolved !== text) process.stderr.write(`hoptrace: filter: ${resolved}\n`);
  return resolved;
}
