/**
 * Keeps the address bar in step with the view (domain/url-state.ts): the session or recording,
 * filter, facet and selected packet, so a view can be shared by its link. Playback parameters
 * (speed, loop…) are left as they are.
 */
import { watch } from 'vue';
import { sampleRateOf } from '../api/contract.js';
import { formatUrlState } from '../domain/url-state.js';
import type { Ingest } from './ingest.js';
import type { Live } from './live.js';
import type { Replay } from './replay.js';

export function syncUrl(ingest: Ingest, live: Live, replay: Replay): void {
  const { state } = ingest;
  watch(
    () => [live.state.session?.id, live.state.session?.sampleRate, state.filterText, state.facet, state.selectedId, replay.state.replayName, replay.state.replaySource] as const,
    () => {
      const isLive = state.mode === 'live';
      const r = replay.state;
      // A local file cannot be fetched again from a link: it stays out of the address bar.
      const q = formatUrlState({
        session: isLive ? live.state.session?.id ?? null : null,
        sample: isLive && live.state.session ? sampleRateOf(live.state.session) : null,
        replay: !isLive && r.replaySource === 'url' ? r.replayName : null,
        recording: !isLive && r.replaySource === 'library' ? r.replayName : null,
        filter: state.filterText,
        facet: state.facet,
        packet: state.selectedId,
      });
      // Keep other parameters (speed, loop) that are not part of the shared view.
      const keep = new URLSearchParams(location.search);
      const next = new URLSearchParams(q);
      for (const k of ['speed', 'loop', 'gap', 'max', 'paused']) {
        const v = keep.get(k);
        if (v !== null) next.set(k, v);
      }
      const s = next.toString();
      const target = `${location.pathname}${s ? `?${s}` : ''}${location.hash}`;
      if (target !== `${location.pathname}${location.search}${location.hash}`) history.replaceState(history.state, '', target);
    },
    { deep: true },
  );
}
