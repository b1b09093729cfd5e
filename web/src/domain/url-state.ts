/**
 * What the address bar holds, so a view can be shared: the session (or the replayed recording:
 * `replay=` a file on this server or the demo, `recording=` a library recording by name),
 * the filter, the namespace/interface/link facet and the selected packet, and the live session's
 * flow sampling (`sample=16`: 1 in 16 flows), so a link opened after its session ended starts a
 * session sampled the same way. The token never goes here (see api/token.ts).
 */
import type { Facet } from './packets.js';

export interface UrlState {
  readonly session: string | null;
  readonly replay: string | null;
  /** A recording of the service's library, by name. */
  readonly recording: string | null;
  readonly filter: string;
  readonly facet: Facet | null;
  readonly packet: string | null;
  /** The live session follows 1 in this many flows; null: every flow (or not said). */
  readonly sample?: number | null;
}

/** Same bound as the service's (MAX_SESSION_SAMPLE in shared/api-types.ts). */
const MAX_SAMPLE = 65536;

function parseSample(text: string | null): number | null {
  if (!text || !/^\d{1,6}$/.test(text)) return null;
  const n = Number(text);
  return n > 1 && n <= MAX_SAMPLE ? n : null;
}

const IFACE_RE = /^(\d+):(\d+)$/;

function parseIface(text: string | null): { netns: number; ifindex: number } | null {
  const m = text ? IFACE_RE.exec(text) : null;
  return m ? { netns: Number(m[1]), ifindex: Number(m[2]) } : null;
}

export function parseFacet(params: URLSearchParams): Facet | null {
  const ns = params.get('ns');
  if (ns && /^\d+$/.test(ns)) return { kind: 'ns', netns: Number(ns) };
  const iface = parseIface(params.get('iface'));
  if (iface) return { kind: 'iface', ...iface };
  const link = params.get('link')?.split('-');
  if (link?.length === 2) {
    const a = parseIface(link[0] ?? null);
    const b = parseIface(link[1] ?? null);
    if (a && b) return { kind: 'link', a, b };
  }
  return null;
}

export function parseUrlState(search: string): UrlState {
  const p = new URLSearchParams(search);
  const session = p.get('session');
  const recording = p.get('recording');
  const sample = parseSample(p.get('sample'));
  return {
    session: session && /^[a-z0-9]{1,32}$/.test(session) ? session : null,
    replay: p.get('replay'),
    recording: recording && /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(recording) && !recording.includes('..') ? recording : null,
    filter: p.get('filter') ?? '',
    facet: parseFacet(p),
    packet: p.get('packet'),
    // Only when said: a view of every flow reads as it did before sampling existed.
    ...(sample !== null ? { sample } : {}),
  };
}

/** The query string for a state (keys with empty values left out), e.g. `?session=ab12&filter=udp`. */
export function formatUrlState(s: UrlState): string {
  const p = new URLSearchParams();
  if (s.replay) p.set('replay', s.replay);
  if (s.recording) p.set('recording', s.recording);
  if (s.session) p.set('session', s.session);
  if (s.sample && s.sample > 1) p.set('sample', String(s.sample));
  if (s.filter) p.set('filter', s.filter);
  const f = s.facet;
  if (f?.kind === 'ns') p.set('ns', String(f.netns));
  else if (f?.kind === 'iface') p.set('iface', `${f.netns}:${f.ifindex}`);
  else if (f?.kind === 'link') p.set('link', `${f.a.netns}:${f.a.ifindex}-${f.b.netns}:${f.b.ifindex}`);
  if (s.packet) p.set('packet', s.packet);
  const q = p.toString();
  return q ? `?${q}` : '';
}
