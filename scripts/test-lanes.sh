#!/usr/bin/env bash
# The test suite in two lanes at once (vitest.config.ts): the Node-side tests, and beside them the
# overlay/hub tests and the dashboard's. Each lane runs its files one after another. The second
# lane's labs get addresses and namespace prefixes of their own, so the probes of one lane never
# count the other's packets. Extra arguments go to both vitest runs (e.g. `-- --reporter=dot`).
set -euo pipefail
cd "$(dirname "$0")/.."
extra=''; if [ $# -gt 0 ]; then extra=$(printf ' %q' "$@"); fi
exec npx concurrently --names "lane1,lane2" --prefix "[{name}]" --success all \
  "npx vitest run --project node${extra}" \
  "HOPTRACE_LAB_NET=245 HOPTRACE_TEST_ADDRESS_BASE=246 HOPTRACE_TEST_PREFIX=b npx vitest run --project node-b --project web${extra}"
