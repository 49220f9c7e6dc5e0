#!/usr/bin/env bash
# The only way the generated wire code changes. Pinned generator: grpcio-tools==1.85.1
# (also pinned in pyproject.toml [dev]). Usage: proto/generate.sh [OUT_DIR]
#   no argument: regenerate in place under proto/
#   --check:     regenerate into a temp dir and fail if anything differs (run by `make test`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
py="${PYTHON:-python}"
want="1.85.1"
have="$("$py" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))')"
if [ "$have" != "$want" ]; then
  echo "proto/generate.sh: grpcio-tools $want required, found $have" >&2
  exit 1
fi

gen() {
  local out="$1"
  mkdir -p "$out"
  "$py" -m grpc_tools.protoc -I "$here" \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    "$here"/canhgac_proto/v1/*.proto
}

if [ "${1:-}" = "--check" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  gen "$tmp"
  status=0
  for f in "$tmp"/canhgac_proto/v1/*_pb2*; do
    rel="canhgac_proto/v1/$(basename "$f")"
    if ! diff -u "$here/$rel" "$f" >/dev/null 2>&1; then
      echo "proto drift: $rel differs from what proto/generate.sh produces" >&2
      status=1
    fi
  done
  [ "$status" = 0 ] && echo "proto: generated code is up to date"
  exit "$status"
fi
gen "${1:-$here}"
