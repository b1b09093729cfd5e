#!/usr/bin/env bash
# npm run setup: make a fresh Debian machine ready to build, run and test hoptrace.
# Idempotent: installs only what is missing, mounts tracefs/debugfs only when absent.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the tracer (bpftrace, bpftool), the tools discovery and the lab use
# (iproute2, iptables, nftables, util-linux's setpriv), ping for lab traffic, tshark for checking
# pcapng exports, chromium for browser tests, iperf3 for benchmarks and tcpdump for the overhead
# benchmark's comparison (bench/overhead.ts: what a user would otherwise reach for), procps
# (pgrep, sysctl) and python3 for tests (a listening socket in a namespace in the topology tests).
# Real container runtimes for the workload and NAT tests (test/helpers/podman.ts, cni.ts): podman
# with netavark (its bridge/NAT backend) and runc (crun refuses hybrid cgroups), catatonit (the
# pause process of a podman pod's infra container), busybox-static (the test image's rootfs, so no
# registry is needed), containernetworking-plugins (the CNI bridge/portmap/firewall plugins).
# nats-server (JetStream with -js): the message bus of `agent`/`serve --hub`, started by the many-node
# tests on a free port (test/helpers/nats.ts); `npm start` never needs it.
packages=(bpftrace bpftool iproute2 iptables nftables util-linux iputils-ping tshark chromium iperf3 tcpdump procps python3 podman netavark runc catatonit busybox-static containernetworking-plugins nats-server)
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

# bpftrace 0.17 looks for tracepoints under /sys/kernel/debug/tracing.
if [ "$(id -u)" -eq 0 ]; then
  mountpoint -q /sys/kernel/debug || mount -t debugfs nodev /sys/kernel/debug || echo "setup: could not mount debugfs" >&2
  mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || echo "setup: could not mount tracefs" >&2
elif ! mountpoint -q /sys/kernel/tracing && ! mountpoint -q /sys/kernel/debug; then
  echo "setup: tracefs is not mounted and only root can mount it: run npm run setup as root (sudo)." >&2
fi

# bpftrace >= 0.21 for the fast probe tier (raw tracepoints): the system's when new enough, else a
# private copy from Debian 13's packages in .bpftrace/ (scripts/bpftrace-private.sh). Without it
# hoptrace still works on the classic tier, so the rest of set-up goes on; setup then exits 1.
fast_tier=ok
bash scripts/bpftrace-private.sh || fast_tier=failed

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
npm run build
if [ "$fast_tier" = failed ]; then
  echo "setup: done, but without a bpftrace >= 0.21: hoptrace runs on the classic probe tier (see the message above)." >&2
  exit 1
fi
echo "setup: done"
