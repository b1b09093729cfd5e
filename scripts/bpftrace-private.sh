#!/usr/bin/env bash
# Provides a bpftrace >= 0.21 (raw tracepoints, ring-buffer output: the fast probe tier) without
# touching the system: when the system's bpftrace is older (Debian 12 ships 0.17), Debian 13's
# bpftrace and the libraries it needs are fetched with `apt-get download` into a private apt
# state (its own sources list, lists and cache; the system's sources, lists and installed
# packages are only read), unpacked with `dpkg -x` into DIR/root, and run through that folder's
# own loader by the wrapper DIR/bin/bpftrace. Idempotent: a working copy is kept.
#
# DIR is /var/lib/hoptrace/bpftrace unless given: a folder the host owns, not the package's (npm
# replaces that on every upgrade), where server/bpftrace-binary.ts looks for it.
#
# The download's sources are derived from the host's own apt configuration: every Debian entry
# for the host's release (its codename, -updates, -security) is repeated for Debian 13. No host
# names here.
#
# Usage: scripts/bpftrace-private.sh [--force] [DIR]   (run by `hoptrace setup`; needs root to download)
set -euo pipefail
force=no
if [ "${1:-}" = "--force" ]; then force=yes; shift; fi
root_dir="${1:-/var/lib/hoptrace/bpftrace}"
case "$root_dir" in /*) ;; *) root_dir="$PWD/$root_dir" ;; esac
target=trixie   # Debian 13: bpftrace 0.23
min_minor=21

say() { echo "setup: bpftrace: $*"; }

# "bpftrace v0.23.2" → 23 (major 0 only; a 1.x counts as new enough).
minor_of() { sed -nE 's/^bpftrace v?([0-9]+)\.([0-9]+).*/\1 \2/p' | awk '{ print ($1 > 0) ? 999 : $2 }'; }

if [ "$force" = no ]; then
  if command -v bpftrace >/dev/null; then
    m=$(bpftrace --version 2>/dev/null | minor_of || true)
    if [ -n "$m" ] && [ "$m" -ge "$min_minor" ]; then say "the system's $(bpftrace --version) is new enough"; exit 0; fi
  fi
  if [ -x "$root_dir/bin/bpftrace" ] && [ -e "$root_dir/ld/bpftrace" ]; then
    m=$("$root_dir/bin/bpftrace" --version 2>/dev/null | minor_of || true)
    if [ -n "$m" ] && [ "$m" -ge "$min_minor" ]; then say "private copy in $root_dir ($("$root_dir/bin/bpftrace" --version)) is in place"; exit 0; fi
    say "the private copy in $root_dir does not start: making it again"
  fi
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: bpftrace: the system's bpftrace is older than 0.$min_minor and making the private copy needs root (apt-get download): run hoptrace setup as root (sudo)." >&2
  exit 1
fi

arch=$(dpkg --print-architecture)
case "$arch" in
  amd64) triplet=x86_64-linux-gnu; loader=ld-linux-x86-64.so.2 ;;
  arm64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1 ;;
  *) echo "setup: bpftrace: no private copy for architecture $arch: install bpftrace >= 0.$min_minor from your distribution, or set HOPTRACE_BPFTRACE." >&2; exit 1 ;;
esac

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
if [ -z "$codename" ]; then
  echo "setup: bpftrace: /etc/os-release names no release codename, so no Debian 13 sources can be derived: install bpftrace >= 0.$min_minor, or set HOPTRACE_BPFTRACE." >&2
  exit 1
fi

# Sources: the host's entries for its own release, one-line (.list) and deb822 (.sources) alike,
# as "URI SUITE COMPONENTS SIGNED-BY" rows, the suite moved from the host's codename to Debian 13.
work="$root_dir/apt"
rm -rf "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/prefs" "$work/debs"
shopt -s nullglob
{
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [signed-by=K arch=…] URI SUITE COMP…
    awk '$1 == "deb" {
      key = "-"; i = 2
      if ($2 ~ /^\[/) { while (i <= NF) { if ($i ~ /signed-by=/) { key = $i; sub(/.*signed-by=/, "", key); sub(/\].*/, "", key) } if ($i ~ /\]$/) { i++; break } i++ } }
      uri = $i; suite = $(i + 1); comps = ""
      for (j = i + 2; j <= NF; j++) comps = comps (comps == "" ? "" : ",") $j
      print uri, suite, comps, key
    }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    awk 'function flush() { if (types ~ /(^| )deb( |$)/ && enabled != "no") { n = split(uris, u, " "); m = split(suites, s, " "); c = comps; gsub(/ +/, ",", c); for (a = 1; a <= n; a++) for (b = 1; b <= m; b++) print u[a], s[b], c, (key == "" ? "-" : key) } types = uris = suites = comps = key = enabled = "" }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      { field = tolower($1); sub(/:$/, "", field); $1 = ""; sub(/^ +/, ""); v = $0
        if (field == "types") types = v; else if (field == "uris") uris = v; else if (field == "suites") suites = v
        else if (field == "components") comps = v; else if (field == "signed-by") key = v; else if (field == "enabled") enabled = v }
      END { flush() }' "$f"
  done
} | awk -v c="$codename" -v t="$target" '$2 == c || index($2, c "-") == 1 { s = $2; sub("^" c, t, s); k = $4; gsub(c, t, k); print $1, s, $3, k }' | sort -u > "$work/rows"

if [ ! -s "$work/rows" ]; then
  echo "setup: bpftrace: no Debian sources for $codename in /etc/apt/sources.list(.d), so none for Debian 13 can be derived: install bpftrace >= 0.$min_minor, or set HOPTRACE_BPFTRACE." >&2
  exit 1
fi
while read -r uri suite comps key; do
  opts="arch=$arch"
  if [ "$key" != "-" ] && [ -f "$key" ]; then opts="$opts signed-by=$key"; fi
  echo "deb [$opts] $uri $suite ${comps//,/ }"
done < "$work/rows" > "$work/sources.list"
say "fetching Debian 13's bpftrace (~72 MB) from: $(awk '{ print $1 " " $2 }' "$work/rows" | paste -sd, -)"

# A private apt: only its own sources, lists, cache and no preference files; the system's
# dpkg status is only read.
aptopts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=$work/parts"
  -o "Dir::Etc::Preferences=$work/prefs/none" -o "Dir::Etc::PreferencesParts=$work/prefs"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
  -o "APT::Sandbox::User=root" -o "Acquire::Languages=none"
)
apt-get "${aptopts[@]}" -qq update

# bpftrace and what its libraries need (measured: the loader lists nothing missing with these).
packages=(bpftrace libbpf1 libbpfcc libc6 libclang1-19 libllvm19 libelf1t64 libstdc++6 libgcc-s1 libsframe1 libzstd1 zlib1g
  libffi8 libedit2 libxml2 libz3-4 libtinfo6 libicu76 liblzma5 libbsd0 libmd0 libdw1t64 libbz2-1.0)
(cd "$work/debs" && apt-get "${aptopts[@]}" -qq download "${packages[@]}")

rm -rf "$root_dir/root.new"
mkdir -p "$root_dir/root.new"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$root_dir/root.new"; done

# Debian 13 is merged-/usr: everything the loader needs is under usr/lib/<triplet>.
lib="$root_dir/root.new/usr/lib/$triplet"
missing=$("$lib/$loader" --library-path "$lib" --list "$root_dir/root.new/usr/bin/bpftrace" 2>&1 | grep 'not found' || true)
if [ -n "$missing" ]; then
  echo "setup: bpftrace: the private copy lacks libraries:" >&2
  echo "$missing" >&2
  exit 1
fi
rm -rf "$root_dir/root"
mv "$root_dir/root.new" "$root_dir/root"
rm -rf "$work/debs" "$work/cache"

mkdir -p "$root_dir/bin" "$root_dir/ld"
# The loader is run through a link named bpftrace: the kernel names a process after the file it
# executes, so the process reads as bpftrace in ps/pgrep, not as ld-linux.
ln -sfn "../root/usr/lib/$triplet/$loader" "$root_dir/ld/bpftrace"
cat > "$root_dir/bin/bpftrace" <<EOF
#!/bin/sh
# Debian 13's bpftrace, run through its own loader and libraries (made by hoptrace setup: scripts/bpftrace-private.sh).
d=\$(dirname "\$0")/..
exec "\$d/ld/bpftrace" --library-path "\$d/root/usr/lib/$triplet" "\$d/root/usr/bin/bpftrace" "\$@"
EOF
chmod +x "$root_dir/bin/bpftrace"
v=$("$root_dir/bin/bpftrace" --version 2>&1) || { echo "setup: bpftrace: the private copy does not start: $v" >&2; exit 1; }
say "private copy ready: $root_dir/bin/bpftrace ($v)"
