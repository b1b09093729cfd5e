/**
 * Entry point: the page's stores wired around the ingest worker (store/dashboard.ts says who
 * talks to whom), the layout engine, and the views mounted on them.
 */
import { createApp } from 'vue';
import App from './App.vue';
import { createDashboard } from './store/dashboard.js';
import { browserLayoutEngine } from './domain/elk-engine.js';
import { takeTokenFromUrl } from './api/token.js';
import demoRecordingUrl from '../fixtures/demo-lab.hoptrace?url';
import './styles.css';

takeTokenFromUrl();
const dash = createDashboard({
  createWorker: () => new Worker(new URL('./worker/ingest.worker.ts', import.meta.url), { type: 'module', name: 'hoptrace-ingest' }),
  demoRecordingUrl,
});
createApp(App, { dash, engine: browserLayoutEngine() }).mount('#app');
dash.start();
// The benchmark and end-to-end tests read the state through this handle.
(window as unknown as { __hoptrace?: unknown }).__hoptrace = dash;
