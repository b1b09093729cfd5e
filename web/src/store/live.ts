/**
 * The live connection to the service: health and capabilities, which session the page shows
 * (the one the address names, else the service's pinned one, else an unfiltered one it starts),
 * the socket.io subscription feeding the worker, the topology model, and the token.
 */
import { reactive } from 'vue';
import type { Capabilities, LiveStats, SessionDepth, SessionInfo, SessionList, SessionStateMessage } from '../api/contract.js';
import { dropReasonEntries, isCapabilities, isClockPair, isHealth, isSessionInfo, isSessionList, isTopology, sampleRateOf } from '../api/contract.js';
import { ApiError, type RestClient } from '../api/rest.js';
import { connectLive, type LiveSource } from '../api/live-source.js';
import { connectCluster, type ClusterSource } from '../api/cluster-source.js';
import { isClusterPackets, isClusterView, namespacesKey, type ClusterView } from '../domain/cluster.js';
import type { Packet } from '../../../shared/packet.js';
import { readToken, saveToken } from '../api/token.js';
import type { ClockRef } from '../domain/format.js';
import type { FilterProblem } from '../domain/packets.js';
import type { Ingest } from './ingest.js';
import type { Notice } from './notices.js';
import type { Recordings } from './recordings.js';

/** Where the page stands with the service; 'no-session': the service answers but no trace could start (not root, no bpftrace...). */
export type Connection = 'starting' | 'connecting' | 'connected' | 'disconnected' | 'offline' | 'unauthorized' | 'no-session' | 'replay';

export interface LiveOptions {
  readonly rest: RestClient;
  readonly ingest: Ingest;
  readonly recordings: Recordings;
  readonly notify: (n: Notice) => void;
  /** The session and sample rate the address bar asked for. */
  readonly session: string | null;
  readonly sample: number | null;
}

export function createLive(opts: LiveOptions) {
  const { rest, ingest, recordings, notify } = opts;
  const state = reactive({
    connection: 'starting' as Connection,
    connectionDetail: '',
    capabilities: null as Capabilities | null,
    sessions: [] as SessionInfo[],
    session: null as SessionInfo | null,
    sessionState: null as SessionStateMessage | null,
    serverStats: null as LiveStats | null,
    /** Hub mode (`serve --hub`): the cluster as the hub last said; null on a single host. */
    cluster: null as ClusterView | null,
  });

  let live: LiveSource | null = null;
  /** Sessions the user started or picked: a slower default pick must not replace theirs. */
  let userSwitches = 0;
  /** The service host's clock pair from the subscribe ack (null: an older service; estimate instead). */
  let hostClock: ClockRef | null = null;
  let topoTimer: ReturnType<typeof setTimeout> | undefined;
  /** The service sends its model with `topology` messages: no need to re-read it on name changes. */
  let modelFromStream = false;

  ingest.hooks.serverRate = () => state.serverStats?.eventsPerSec ?? null;
  ingest.hooks.hostClock = () => hostClock;

  async function start(): Promise<void> {
    state.connection = 'connecting';
    let hub: boolean;
    try {
      const health = await rest.get('/api/health', isHealth);
      hub = health.hub === true;
    } catch (err) {
      if (err instanceof ApiError && err.code === 'unauthorized') {
        state.connection = 'unauthorized';
        state.connectionDetail = err.message;
        return;
      }
      state.connection = 'offline';
      state.connectionDetail = err instanceof Error ? err.message : String(err);
      // Keep trying: the page comes to life when the service does.
      setTimeout(() => void start(), 3000);
      return;
    }
    try {
      state.capabilities = await rest.get('/api/capabilities', isCapabilities);
    } catch {
      state.capabilities = null;
    }
    // `serve --hub` says so in /api/health: the page shows the cluster's stitched packets and
    // model instead of a session of the hub host's own kernel. A single host is asked nothing new.
    if (hub) {
      try {
        startCluster(await rest.get('/api/cluster', isClusterView));
        void pickHubSession();
      } catch (err) {
        state.connection = 'offline';
        state.connectionDetail = `the hub does not answer /api/cluster: ${(err as Error).message}`;
        setTimeout(() => void start(), 3000);
      }
      return;
    }
    void refreshTopology();
    // The service answered; a new session's bpftrace takes seconds to compile and attach: say
    // that rather than "connecting", which reads as a network problem.
    state.connection = 'starting';
    state.connectionDetail = 'bpftrace is compiling and attaching its probes; this takes a few seconds.';
    const switchesBefore = userSwitches;
    let picked: SessionInfo;
    try {
      picked = await pickSession();
    } catch (err) {
      if (userSwitches !== switchesBefore) return;
      const e = err as ApiError;
      // The service is there (it answered): saying "disconnected" would send people after the
      // wrong problem.
      state.connection = 'no-session';
      state.connectionDetail = e.message;
      notify(e.code === 'cannot-trace'
        ? { kind: 'error', title: 'This host cannot trace', body: e.message, hints: state.capabilities?.problems.filter((p) => p !== e.message) }
        : { kind: 'error', title: 'Could not start a trace session', body: e.message });
      return;
    }
    // Starting the default session can take seconds (bpftrace attaching): a session the user
    // started or picked meanwhile wins.
    if (userSwitches !== switchesBefore) return;
    state.session = picked;
    // The picker shows the session it opened (one started just now is not in the list read before).
    if (!state.sessions.some((x) => x.id === picked.id)) state.sessions = [...state.sessions, picked];
    subscribe(picked);
  }

  async function pickSession(): Promise<SessionInfo> {
    const list: SessionList = await rest.get('/api/sessions', isSessionList);
    state.sessions = [...list.sessions];
    const usable = (x: SessionInfo): boolean => x.state !== 'failed' && x.state !== 'stopped';
    // The service's own session (`serve --lab demo` traces its lab in one it keeps): what the
    // service means to show. Opening it starts no second bpftrace and keeps the lab's filter.
    const sample = opts.sample ?? 1;
    const pinned = list.sessions.find((x) => x.pinned === true && usable(x) && sampleRateOf(x) === sample);
    if (opts.session) {
      const s = list.sessions.find((x) => x.id === opts.session);
      if (s) return s;
      notify({
        kind: 'warning', title: `Session ${opts.session} is gone`,
        body: `It ended (sessions nobody watches stop after a while). Showing ${pinned ? 'the service\'s own session' : 'a new session'} instead.`,
      });
    }
    if (pinned) return pinned;
    // A session someone started with depth costs more (nft tables, more probes): not the default
    // view. A sampled one shows only some flows: taken only when the link asked for that rate.
    const open = list.sessions.find((x) => x.filter === '' && !x.depth?.netfilter && !x.depth?.notes && sampleRateOf(x) === sample && usable(x));
    if (open) return open;
    return rest.post('/api/sessions', { filter: '', ...(sample > 1 ? { sample } : {}) }, isSessionInfo);
  }

  /**
   * Starts a session; `depth` adds the netfilter rule trace and/or the notes tier, `sample` > 1
   * follows 1 in that many flows (POST /api/sessions).
   */
  async function newSession(filter: string, depth: Partial<SessionDepth> = {}, sample = 1): Promise<FilterProblem | null> {
    const problem = ingest.checkFilter(filter);
    if (problem) return problem;
    try {
      const body = { filter, ...(depth.netfilter ? { netfilter: true } : {}), ...(depth.notes ? { notes: true } : {}), ...(sample > 1 ? { sample } : {}) };
      const s = await rest.post('/api/sessions', body, isSessionInfo);
      state.sessions = [...state.sessions.filter((x) => x.id !== s.id), s];
      switchSession(s);
      return null;
    } catch (err) {
      const e = err as ApiError;
      if (e.code === 'bad-filter' && e.detail) return { message: e.message, offset: e.detail.offset, length: e.detail.length, formatted: e.message };
      notify({ kind: 'error', title: 'Could not start the session', body: e.message });
      return null;
    }
  }

  function switchSession(s: SessionInfo): void {
    userSwitches++;
    state.session = s;
    state.serverStats = null;
    state.sessionState = null;
    ingest.clear();
    if (clusterSource) {
      // Hub mode: the hub's sessions run on the agents; their packets come stitched over /cluster.
      const source = clusterSource;
      held = [];
      void source.follow(s.id).then((ack) => {
        if (!ack.ok) notify({ kind: 'error', title: 'Could not follow the session', body: ack.error?.message ?? 'refused' });
      });
      loadHubPackets(s.id);
      // The hub records its sessions too (POST /api/sessions/:id/recording, node on every hop).
      recordings.follow(s.id, s.recordingStatus);
      return;
    }
    recordings.follow(s.id, s.recordingStatus);
    subscribe(s);
  }

  async function refreshSessions(): Promise<void> {
    try {
      const list = await rest.get('/api/sessions', isSessionList);
      state.sessions = [...list.sessions];
    } catch {
      // The connection state already tells when the service is gone.
    }
  }

  async function refreshTopology(): Promise<void> {
    try {
      ingest.setTopology(await rest.get('/api/topology', isTopology));
    } catch (err) {
      if (!ingest.topology.value) {
        notify({ kind: 'warning', title: 'No topology model', body: `${(err as Error).message} Packets still show; namespaces appear by inode.` });
      }
    }
  }

  let clusterKey = '';
  let clusterSource: ClusterSource | null = null;
  /** Hub mode: packets the socket brought while the session's recent ones are read over REST. */
  let held: Packet[] | null = [];
  /** Hub mode: the hub session shown (its id); a later pick replaces an earlier one still loading. */
  let hubSession = 'hub';

  function startCluster(first: ClusterView): void {
    onCluster(first);
    clusterSource = connectCluster(readToken(), {
      connection(c, detail) {
        state.connection = c;
        state.connectionDetail = detail;
      },
      cluster: onCluster,
      packets(packets) {
        if (held) held.push(...packets);
        else ingest.post({ type: 'packets', packets });
      },
      topology() {
        // A node's namespaces, interfaces, routes or rules changed: the drawn model is re-read.
        void rest.get('/api/cluster/topology', isTopology).then((t) => ingest.setTopology(t)).catch(() => undefined);
      },
      sessionEnded(id) {
        notify({ kind: 'warning', title: `Session ${id} ended`, body: 'Nobody watched it, or it was deleted. Pick or start another.' });
        void refreshSessions();
      },
    });
    loadHubPackets('hub');
  }

  /**
   * The socket sends only packets stitched from now on: the session's recent ones come from REST
   * first, and what the socket brings meanwhile waits, so nothing is listed twice or missed.
   */
  function loadHubPackets(id: string): void {
    held = [];
    hubSession = id;
    const release = (recent: readonly Packet[]): void => {
      if (hubSession !== id) return;
      const seen = new Set(recent.map((p) => p.id));
      const later = (held ?? []).filter((p) => !seen.has(p.id));
      held = null;
      const all = [...recent, ...later];
      if (all.length > 0) ingest.post({ type: 'packets', packets: all });
    };
    rest.get(`/api/sessions/${encodeURIComponent(id)}/packets?limit=1000`, isClusterPackets).then(release, () => release([]));
  }

  /** Hub mode: the sessions of the cluster for the picker, and the one the address names (else the cluster session). */
  async function pickHubSession(): Promise<void> {
    try {
      const list = await rest.get('/api/sessions', isSessionList);
      state.sessions = [...list.sessions];
      const named = opts.session ? list.sessions.find((x) => x.id === opts.session) : undefined;
      if (named && named.id !== 'hub') switchSession(named);
      else {
        state.session = list.sessions.find((x) => x.id === 'hub') ?? null;
        recordings.follow(state.session?.id ?? null, state.session?.recordingStatus);
      }
    } catch (err) {
      notify({ kind: 'warning', title: 'No session list from the hub', body: (err as Error).message });
    }
  }

  function onCluster(view: ClusterView): void {
    state.cluster = view;
    const key = namespacesKey(view);
    if (key === clusterKey) return;
    // Nodes or their namespaces changed: names and the model drawn are the cluster's.
    clusterKey = key;
    ingest.setNames(view.nodes.flatMap((n) => n.namespaces.map((x) => ({ netns: x.netns, name: x.name }))));
    void rest.get('/api/cluster/topology', isTopology).then((t) => ingest.setTopology(t)).catch((err: Error) => {
      notify({ kind: 'warning', title: 'No cluster topology', body: `${err.message} Packets still show; namespaces appear by inode.` });
    });
  }

  function subscribe(s: SessionInfo): void {
    live?.close();
    live = connectLive(s.id, readToken(), {
      connection(c, detail) {
        state.connection = c;
        state.connectionDetail = detail;
      },
      subscribed(ack) {
        if (!ack.ok) {
          notify({ kind: 'error', title: 'Subscription refused', body: ack.error.message });
          return;
        }
        state.session = ack.session;
        hostClock = isClockPair(ack.clock) ? ack.clock : null;
        if (hostClock && ingest.state.mode === 'live') ingest.state.clock = hostClock;
        recordings.follow(ack.session.id, ack.session.recordingStatus);
        ingest.post({ type: 'drop-reasons', entries: dropReasonEntries(ack.dropReasons) });
        ingest.post({ type: 'depth-config', netfilter: ack.session.depth?.netfilter === true });
        ingest.post({ type: 'session-filter', text: ack.session.filter });
        ingest.setNames(ack.namespaces);
      },
      batch(buf) {
        ingest.post({ type: 'batch', buf }, [buf]);
      },
      depth(buf) {
        ingest.post({ type: 'depth', buf }, [buf]);
      },
      stats(st) {
        state.serverStats = st;
      },
      state(st) {
        state.sessionState = st;
        if (state.session) state.session = { ...state.session, state: st.state };
      },
      recording(r, message) {
        recordings.onStreamStatus(r, message);
      },
      names(list) {
        ingest.setNames(list);
        if (modelFromStream) return;
        // Names changed: namespaces came or went; the model is worth re-reading (debounced).
        clearTimeout(topoTimer);
        topoTimer = setTimeout(() => void refreshTopology(), 1000);
      },
      model(t) {
        // The service sends its changed model along: the same one its own /packets annotate with.
        modelFromStream = true;
        clearTimeout(topoTimer);
        ingest.setTopology(t);
      },
    });
  }

  /** Leaves the live stream (a replay takes over the worker). */
  function close(): void {
    live?.close();
    live = null;
    clusterSource?.close();
    clusterSource = null;
  }

  function setToken(token: string): void {
    saveToken(token);
    location.reload();
  }

  return { state, start, newSession, switchSession, refreshSessions, close, setToken };
}

export type Live = ReturnType<typeof createLive>;
