#!/usr/bin/env bash
# `make run`: a collector on SQLite under ./var and one local agent reporting every 15 s.
# `make demo` (DEMO=1): the same plus a simulated Hạ Lang district (60 machines over its
# departments and 13 communes) so every dashboard has data at once. The demo keeps its data
# apart, under ./var/demo, so `make run` afterwards shows no simulated machines;
# `make reset-demo` deletes it.
# Ctrl-C stops everything. Re-running reuses the same directory (the agent keeps its identity).
# GRPC_PORT and HTTP_PORT (default 4317, 9108) choose other ports when those are taken.
set -euo pipefail
cd "$(dirname "$0")/.."
grpc_port=${GRPC_PORT:-4317}
http_port=${HTTP_PORT:-9108}
var=${VAR_ROOT:-var}  # tests run it elsewhere
if [ "${DEMO:-0}" = 1 ]; then var=$var/demo; fi
mkdir -p "$var"
grpc_addr=127.0.0.1:$grpc_port

for port in "$grpc_port" "$http_port"; do
  if ! python -c 'import socket, sys; socket.create_server(("127.0.0.1", int(sys.argv[1])))' \
    "$port" 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use (another \`make run\` or \`make demo\`, or another program)." >&2
    echo "Stop it, or choose free ports: make run GRPC_PORT=14317 HTTP_PORT=19108" >&2
    exit 1
  fi
done

# configs/*.local.yaml with this run's directory and ports.
cfg=$var/collector.yaml
sed -e "s|^grpc_listen: .*|grpc_listen: $grpc_addr|" \
  -e "s|^http_listen: .*|http_listen: 127.0.0.1:$http_port|" \
  -e "s|sqlite:///var/canhgac.db|sqlite:///$var/canhgac.db|" \
  configs/collector.local.yaml >"$cfg"
agent_cfg=$var/agent.yaml
sed -e "s|^state_dir: .*|state_dir: $var/agent|" configs/agent.local.yaml >"$agent_cfg"
printf 'collector:\n  address: %s\n' "$grpc_addr" >>"$agent_cfg"

collector=""
agent=""
fleet=""
cleanup() {
  trap - INT TERM EXIT
  for pid in $fleet $agent $collector; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in $fleet $agent $collector; do wait "$pid" 2>/dev/null || true; done
  echo "stopped collector, agent${fleet:+ and fleet simulator}"
}
trap cleanup INT TERM EXIT
canhgac-collector --config "$cfg" serve &
collector=$!

for _ in $(seq 50); do
  python -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "http://127.0.0.1:$http_port/readyz" 2>/dev/null && break
  kill -0 "$collector" 2>/dev/null || { echo "collector failed to start" >&2; exit 1; }
  sleep 0.2
done

if [ ! -f "$var/agent/credential.json" ]; then
  token=$(canhgac-collector --config "$cfg" token create \
    --district "Hạ Lang" --commune "Thanh Nhật" --role workstation --expires 1h --uses 1 \
    --note "make run" 2>/dev/null)
  CANHGAC_TOKEN="$token" canhgac-agent --config "$agent_cfg" enroll --collector "$grpc_addr"
fi
canhgac-agent --config "$agent_cfg" run --interval 15s &
agent=$!
if [ "${DEMO:-0}" = 1 ]; then
  python -m bench.fleet --collector "$grpc_addr" --config "$cfg" --agents 60 --rounds 0 \
    --interval 15s >"$var/fleet.log" 2>&1 &
  fleet=$!
  echo "  demo: 60 simulated machines of Hạ Lang report every 15 s (log: $var/fleet.log)"
fi

cat <<MSG

  Canh Gác is running.
    metrics:  http://127.0.0.1:$http_port/metrics   (this machine appears within ~15 s)
    health:   http://127.0.0.1:$http_port/healthz  /readyz
    store:    $var/canhgac.db   (SQLite)
    agents:   .venv/bin/canhgac-collector --config $cfg agent list
  Ctrl-C stops everything.

MSG
wait "$collector"
