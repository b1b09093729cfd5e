/**
 * Short namespace labels for the packet list's path chips. Namespaces on one host usually share
 * a prefix (`htdemo-pod1`, `htdemo-node`; `cni-4a3f…`): cut to a chip's width, every chip read
 * `htdemo-…` and the path said nothing. A label is the shortest ending of the name, cut at a
 * `-`, `_` or `.`, that no other namespace name ends with, so `htdemo-pod1 › htdemo-node ›
 * htdemo-ext` reads `pod1 › node › ext` and two labs' `node`s stay apart (`a1b2c3-node`). The
 * full name stays in the chip's tooltip.
 */

const SEPARATOR = /[-_.]/;

/** The name's endings that start at its beginning or right after a separator, shortest first. */
function endings(name: string): string[] {
  const out: string[] = [];
  for (let i = name.length - 1; i > 0; i--) if (SEPARATOR.test(name.charAt(i - 1))) out.push(name.slice(i));
  out.push(name);
  return out;
}

/** name → its label, for every name given (duplicates count once). */
export function shortNsLabels(names: Iterable<string>): Map<string, string> {
  const unique = [...new Set(names)];
  const uses = new Map<string, number>();
  for (const n of unique) for (const e of new Set(endings(n))) uses.set(e, (uses.get(e) ?? 0) + 1);
  const out = new Map<string, string>();
  for (const n of unique) {
    // An ending of only digits ("2" of "pod-2") says too little on its own.
    out.set(n, endings(n).find((e) => uses.get(e) === 1 && /[a-z]/i.test(e)) ?? n);
  }
  return out;
}
