/**
 * The `--filter` language: a pcap-filter-like expression over hops, parsed once and then
 * evaluated in JavaScript (matchesHop) or compiled into the bpftrace probes (compileToBpftrace).
 */
export type {
  AndFilter, Direction, FamilyFilter, FilterAst, FilterExpr, FilterPrimitive, HostFilter, IpFamily,
  MatchAll, NetFilter, NotFilter, OrFilter, PortFilter, ProtoFilter, ProtoName, WorkloadFilter,
} from './ast.js';
export { PORT_PROTOCOLS, PROTO_INFO } from './ast.js';
export { FilterError, formatFilterError } from './error.js';
export { MAX_FILTER_LENGTH } from './lexer.js';
export { MAX_FILTER_DEPTH, parseFilter } from './parse.js';
export { compileMatcher, hopsMatch, matchesHop, packetMatches, sentMatches } from './match.js';
export { FlowFilter, SENT_FLOW_MEMORY_NS } from './flows.js';
export type { TimedFilterPacket } from './flows.js';
export type { FilterHop, FilterPacket, HopMatcher } from './match.js';
export { describeFilter } from './describe.js';
export { hasWorkloadFilters, resolveWorkloadFilters } from './workloads.js';
export type { WorkloadDirectory } from './workloads.js';
export { BPFTRACE_FILTER_VARIABLES, compileSocketToBpftrace, compileToBpftrace } from './bpftrace.js';
export {
  portToRaw, rawPort, rawV4ToString, rawV6ToString, v4BytesToRaw, v4MaskRaw, v4ToRaw, v6BytesToRaw, v6MaskRaw, v6ToRaw,
} from './raw.js';
export type { RawV6 } from './raw.js';
