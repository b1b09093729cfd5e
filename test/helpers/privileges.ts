/**
 * "Not root enough to trace", the way the kernel means it: uid 0 with every capability dropped.
 * Prefix a command with WITHOUT_CAPABILITIES: setpriv empties the inheritable and bounding sets,
 * so the program it execs starts with no permitted or effective capabilities (uid 0 gains only
 * what the bounding set allows) and cannot load BPF. The uid stays 0, so the process can still
 * read a checkout only root may enter (a clone under `mktemp -d`, mode 0700), unlike `nobody`.
 */
export const WITHOUT_CAPABILITIES = ['setpriv', '--inh-caps=-all', '--bounding-set=-all', '--'] as const;
