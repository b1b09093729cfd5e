#!/usr/bin/env bash
# npm run setup: make a fresh Debian machine ready to build, run and test hoptrace. Idempotent.
#   1. the build (node_modules, dist/, web/dist/): needs only node and npm;
#   2. `hoptrace setup`: what running hoptrace needs, as a user's host gets it (bpftrace and the
#      fast tier's private copy, bpftool, iproute2, nftables, util-linux, ping, tracefs/debugfs);
#   3. what building and testing needs on top (below).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build

# Without root only look: a host someone else set up is fine.
if [ "$(id -u)" -ne 0 ]; then
  node bin/hoptrace.js setup --check || { echo "setup: the host lacks what hoptrace needs: run npm run setup as root (sudo)." >&2; exit 1; }
fi

# hoptrace setup fails when no bpftrace for the fast tier can be made; hoptrace still works on the
# classic tier, so the rest of set-up goes on and setup exits 1 at the end.
host=ok
if [ "$(id -u)" -eq 0 ]; then node bin/hoptrace.js setup || host=failed; fi

# Debian packages for the tests and benchmarks: the system's bpftrace (0.17 on Debian 12: the
# classic tier, which tier-parity compares with the fast one), iptables (the lab's NAT), tshark
# for checking pcapng exports, chromium for browser tests, iperf3 for benchmarks and tcpdump for
# the overhead benchmark's comparison (bench/overhead.ts: what a user would otherwise reach for),
# procps (pgrep, sysctl) and python3 for tests (a listening socket in a namespace in the topology
# tests), systemd for systemd-analyze (the unit's check; no running systemd needed).
# Real container runtimes for the workload and NAT tests (test/helpers/podman.ts, cni.ts): podman
# with netavark (its bridge/NAT backend) and runc (crun refuses hybrid cgroups), catatonit (the
# pause process of a podman pod's infra container), busybox-static (the test image's rootfs, so no
# registry is needed), containernetworking-plugins (the CNI bridge/portmap/firewall plugins).
# nats-server (JetStream with -js): the message bus of `agent`/`serve --hub`, started by the many-node
# tests on a free port (test/helpers/nats.ts); `npm start` never needs it.
packages=(bpftrace iptables tshark chromium iperf3 tcpdump procps python3 systemd podman netavark runc catatonit busybox-static containernetworking-plugins nats-server)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]} — run npm run setup as root (sudo) to install them." >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # tshark asks whether non-root users may capture: answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$host" = failed ]; then
  echo "setup: done, but hoptrace setup could not finish (see its message above): without a bpftrace >= 0.21 hoptrace runs on the classic probe tier." >&2
  exit 1
fi
echo "setup: done"
