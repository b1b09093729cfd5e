/** Rule-level netfilter tracing (`trace --netfilter`, sessions with `netfilter: true`). */
export { NetfilterTracer, monotonicNs } from './tracer.js';
export type { NetfilterTracerOptions, NetfilterTracerEvents, NamespaceState } from './tracer.js';
export { cleanLeftovers, hoptraceTables, type NftNamespace, type Leftover } from './nft.js';
