/** Tests that attach probes or build namespaces need root: they skip with this reason elsewhere, and CI runs as root. */
export const isRoot = process.getuid?.() === 0;
export const NEEDS_ROOT = 'needs root (attaches kernel probes and builds network namespaces); CI runs it as root';
if (!isRoot) console.warn(`skipping root-only tests: ${NEEDS_ROOT}`);
