#!/usr/bin/env bash
# Builds canhgac-agent_VERSION_amd64.deb and canhgac-collector_VERSION_amd64.deb into $OUT
# (default dist/): each a self-contained venv under /opt/canhgac/<side> made with Debian's
# python3, the unit, the configs as conffiles, maintainer scripts that create the user.
# Called by `make deb`; needs python3-venv, dpkg-dev, and pip's index (or its cache).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/packaging/deb"
OUT="${OUT:-$ROOT/dist}"
PYTHON=/usr/bin/python3   # the interpreter the venv runs on; the package depends on it
VERSION="${DEB_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")}"
PYVER="$($PYTHON -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
PYNEXT="$($PYTHON -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1] + 1}")')"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"

"$PYTHON" -m venv "$WORK/buildenv"
"$WORK/buildenv/bin/pip" wheel --quiet --no-deps --wheel-dir "$WORK/wheel" "$ROOT"
wheel="$(ls "$WORK"/wheel/canhgac-*.whl)"

# package side extra description
build() {
  local pkg="$1" side="$2" extra="$3" description="$4"
  local stage="$WORK/$pkg" venv="/opt/canhgac/$side"
  mkdir -p "$stage/DEBIAN" "$stage/usr/bin" "$stage/lib/systemd/system" \
    "$stage/usr/share/doc/$pkg" "$stage/usr/share/lintian/overrides" "$stage/etc/canhgac"
  "$PYTHON" -m venv "$stage$venv"
  "$stage$venv/bin/pip" install --quiet --no-compile --disable-pip-version-check "$wheel[$extra]"
  "$stage$venv/bin/pip" uninstall --quiet --yes pip setuptools
  # The venv was made at its staging path: point every script and pyvenv.cfg at the final one.
  grep -rlF "$stage$venv" "$stage$venv" | xargs sed -i "s|$stage$venv|$venv|g"
  # Only the interpreter links and this side's command: the other side's console script would
  # fail on its missing dependencies, and scapy's shell is not the agent's.
  find "$stage$venv/bin" -mindepth 1 ! -name 'python*' ! -name "$pkg" -delete
  # Modules are data to the interpreter; wheels leave some of them (and .so files) executable.
  find "$stage$venv/lib" -type f -exec chmod 0644 {} +
  find "$stage$venv" -name '__pycache__' -prune -exec rm -rf {} +
  find "$stage$venv" -name 'direct_url.json' -delete   # names the build's temp dir
  ln -s "$venv/bin/$pkg" "$stage/usr/bin/$pkg"

  install -m 0644 "$HERE/copyright" "$stage/usr/share/doc/$pkg/copyright"
  sed "s/@PKG@/$pkg/; s/@VERSION@/$VERSION/" "$HERE/changelog" | gzip -9n \
    > "$stage/usr/share/doc/$pkg/changelog.gz"
  install -m 0644 "$HERE/$pkg.lintian-overrides" "$stage/usr/share/lintian/overrides/$pkg"
  for script in postinst prerm postrm; do
    install -m 0755 "$HERE/$pkg.$script" "$stage/DEBIAN/$script"
  done
  local size
  size="$(du -sk --apparent-size "$stage" | cut -f1)"
  sed -e "s/@VERSION@/$VERSION/" -e "s/@SIZE@/$size/" -e "s/@PYVER@/$PYVER/" \
    -e "s/@PYNEXT@/$PYNEXT/" -e "s/@DESCRIPTION@/$description/" "$HERE/$pkg.control" \
    > "$stage/DEBIAN/control"
  (cd "$stage" && find etc -type f | sed 's|^|/|' | sort) > "$stage/DEBIAN/conffiles"
  find "$stage" -newermt "@$SOURCE_DATE_EPOCH" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  mkdir -p "$OUT"
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$OUT/${pkg}_${VERSION}_amd64.deb" >/dev/null
  echo "$OUT/${pkg}_${VERSION}_amd64.deb"
}

stage_agent() {
  local s="$WORK/canhgac-agent"
  mkdir -p "$s/etc/canhgac" "$s/lib/systemd/system"
  install -m 0644 "$ROOT/configs/agent.example.yaml" "$s/etc/canhgac/agent.yaml"
  install -m 0644 "$ROOT/agent/service/canhgac-agent.service" "$s/lib/systemd/system/"
  # The self-update's root side (docs/fleet.md, Releases).
  install -m 0644 "$ROOT"/agent/service/canhgac-agent-update.{path,service,timer} \
    "$s/lib/systemd/system/"
}

stage_collector() {
  local s="$WORK/canhgac-collector"
  mkdir -p "$s/etc/canhgac/rules" "$s/lib/systemd/system" "$s/usr/share/canhgac"
  install -m 0644 "$ROOT/configs/collector.example.yaml" "$s/etc/canhgac/collector.yaml"
  install -m 0644 "$ROOT/configs/sites.example.yaml" "$s/etc/canhgac/sites.yaml"
  install -m 0644 "$ROOT"/rules/*.yaml "$s/etc/canhgac/rules/"
  install -m 0644 "$ROOT/configs/systemd/canhgac-collector.service" "$s/lib/systemd/system/"
  # Prometheus rules and Grafana dashboards, for the monitoring host to copy (README).
  cp -r "$ROOT/configs/prometheus" "$ROOT/configs/grafana" "$ROOT/configs/alertmanager" \
    "$s/usr/share/canhgac/"
}

stage_agent
build canhgac-agent agent agent "Canh Gác monitoring agent"
stage_collector
build canhgac-collector collector collector "Canh Gác collector"
