/**
 * Child process for the crash test: records synthetic events into argv[2] forever, writing
 * often, until it is killed. Prints "started" once the header is on disk.
 */
import { RecordingFileWriter } from '../../server/recording/writer.js';
import { syntheticEvents, syntheticHeader } from './synthetic.js';

const path = process.argv[2] as string;
const writer = new RecordingFileWriter(path, syntheticHeader(), { flushBytes: 700, flushIntervalMs: 5, fsync: 'never', overwrite: true, indexEveryEvents: 50 });
const events = syntheticEvents(20_000, 42);
process.stdout.write('started\n');
let i = 0;
const step = (): void => {
  for (let k = 0; k < 20 && i < events.length; k++) writer.event(events[i++] as (typeof events)[number]);
  setImmediate(step);
};
step();
