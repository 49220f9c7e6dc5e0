#!/usr/bin/env bash
# `make run`: a collector on SQLite under ./var and one local agent reporting every 15 s.
# `make demo` (DEMO=1): the same plus a simulated Hạ Lang district (60 machines over its
# departments and 13 communes) so every dashboard has data at once.
# Ctrl-C stops everything. Re-running reuses ./var (the agent keeps its identity).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p var
cfg=configs/collector.local.yaml
http_port=9108
grpc_addr=127.0.0.1:4317

canhgac-collector --config "$cfg" serve &
collector=$!
agent=""
fleet=""
cleanup() {
  trap - INT TERM EXIT
  [ -n "$fleet" ] && kill -INT "$fleet" 2>/dev/null && wait "$fleet" 2>/dev/null || true
  [ -n "$agent" ] && kill -TERM "$agent" 2>/dev/null && wait "$agent" 2>/dev/null || true
  kill -TERM "$collector" 2>/dev/null && wait "$collector" 2>/dev/null || true
  echo "stopped collector and agent"
}
trap cleanup INT TERM EXIT

for _ in $(seq 50); do
  python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$http_port/readyz" 2>/dev/null && break
  kill -0 "$collector" 2>/dev/null || { echo "collector failed to start" >&2; exit 1; }
  sleep 0.2
done

if [ ! -f var/agent/credential.json ]; then
  token=$(canhgac-collector --config "$cfg" token create \
    --district "Hạ Lang" --commune "Thanh Nhật" --role workstation --expires 1h --uses 1 \
    --note "make run" 2>/dev/null)
  CANHGAC_TOKEN="$token" canhgac-agent --config configs/agent.local.yaml enroll --collector "$grpc_addr"
fi
canhgac-agent --config configs/agent.local.yaml run --interval 15s &
agent=$!
if [ "${DEMO:-0}" = 1 ]; then
  python -m bench.fleet --collector "$grpc_addr" --config "$cfg" --agents 60 --rounds 0 \
    --interval 15s >var/fleet.log 2>&1 &
  fleet=$!
  echo "  demo: 60 simulated machines of Hạ Lang report every 15 s (log: var/fleet.log)"
fi

cat <<MSG

  Canh Gác is running.
    metrics:  http://127.0.0.1:$http_port/metrics   (this machine appears within ~15 s)
    health:   http://127.0.0.1:$http_port/healthz  /readyz
    store:    $(pwd)/var/canhgac.db   (SQLite)
    agents:   .venv/bin/canhgac-collector --config $cfg agent list
  Ctrl-C stops both.

MSG
wait "$collector"
