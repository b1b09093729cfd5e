/**
 * The top bar's small forms: starting a session (filter, depth, sampling) and starting a
 * recording (its name). What they hold while open, their checks, and their submit actions.
 */
import { computed, ref } from 'vue';
import type { SessionDepth } from '../api/contract.js';
import type { FilterProblem } from '../domain/packets.js';
import type { Recordings } from './recordings.js';

export function createSessionForm(newSession: (filter: string, depth: Partial<SessionDepth>, sample: number) => Promise<FilterProblem | null>) {
  const open = ref(false);
  const filter = ref('');
  const error = ref<string | null>(null);
  const netfilter = ref(false);
  const notes = ref(false);
  /** Flows the new session follows: 1 in this many (1: all), chosen in the kernel by flow hash. */
  const sample = ref(1);

  async function submit(): Promise<void> {
    const problem = await newSession(filter.value.trim(), { netfilter: netfilter.value, notes: notes.value }, sample.value);
    error.value = problem?.formatted ?? null;
    if (!problem) open.value = false;
  }

  return { open, filter, error, netfilter, notes, sample, submit };
}

export function createRecordForm(rec: Recordings) {
  const open = ref(false);
  const name = ref('');
  const recording = computed(() => rec.live.status?.running === true);
  const nameProblem = computed(() => (name.value && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/.test(name.value) ? 'letters, digits, ".", "_" and "-" only' : null));

  async function submit(): Promise<void> {
    if (nameProblem.value) return;
    await rec.start(name.value.trim() || undefined);
    if (!rec.live.error) {
      open.value = false;
      name.value = '';
    }
  }

  /** The record button: stops a running recording, or opens and closes the form. */
  function button(): void {
    if (recording.value) void rec.stop();
    else open.value = !open.value;
  }

  return { open, name, nameProblem, recording, submit, button };
}
