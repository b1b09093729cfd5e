/** The page's notices (errors, warnings, tips): one per title, updated in place rather than repeated. */
import { reactive } from 'vue';

export interface Notice {
  readonly kind: 'error' | 'warning' | 'info';
  readonly title: string;
  readonly body: string;
  readonly hints?: readonly string[];
}

export function createNotices() {
  const state = reactive({ notices: [] as Notice[] });

  /** Shows a notice; one with the same title is updated in place rather than repeated. */
  function notify(n: Notice): void {
    const i = state.notices.findIndex((x) => x.title === n.title);
    if (i >= 0) state.notices.splice(i, 1, n);
    else state.notices.push(n);
  }

  function dismiss(i: number): void {
    state.notices.splice(i, 1);
  }

  /** Info notices are about the live view (a recording saved): stale once a replay starts. */
  function dismissInfo(): void {
    state.notices = state.notices.filter((n) => n.kind !== 'info');
  }

  return { state, notify, dismiss, dismissInfo };
}

export type Notices = ReturnType<typeof createNotices>;
