/** Rule-level netfilter tracing (`trace --netfilter`, sessions with `netfilter: true`). */
export { NetfilterTracer } from './tracer.js';
export type { NetfilterTracerOptions, NetfilterTracerEvents, NamespaceState } from './tracer.js';
export { cleanLeftovers, hoptraceTables, ownTables, hasBridge, type NftNamespace, type Leftover, type OwnTable } from './nft.js';
