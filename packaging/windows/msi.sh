#!/usr/bin/env bash
# The MSI from a PyInstaller --onedir directory ($1): wixl-heat lists its files, wixl compiles
# canhgac-agent.wxs, msibuild adds the command-line properties to SecureCustomProperties (wixl
# writes that property itself, for MajorUpgrade). Writes $OUT/canhgac-agent-$VERSION.msi.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
payload="$(cd "$1" && pwd)"
: "${OUT:?}" "${VERSION:?}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The service's exe is declared in canhgac-agent.wxs (its component holds the ServiceInstall).
(cd "$payload" && find . -type f ! -path ./canhgac-agent.exe | LC_ALL=C sort |
  wixl-heat -p ./ --var var.SourceDir --component-group AgentFiles --directory-ref INSTALLDIR \
    --win64) > "$work/files.wxs"
msi="$OUT/canhgac-agent-$VERSION.msi"
mkdir -p "$OUT"
msi="$(cd "$(dirname "$msi")" && pwd)/$(basename "$msi")"
# wixl resolves sources relative to the working directory only (an absolute SourceDir fails).
(cd "$payload" && wixl --arch x64 -D Win64=yes -D "Version=$VERSION" -D SourceDir=. -o "$msi" \
  "$HERE/canhgac-agent.wxs" "$work/files.wxs")
secure="$(msiinfo export "$msi" Property | tr -d '\r' | awk -F'\t' '$1 == "SecureCustomProperties" {print $2}')"
msibuild "$msi" -q "UPDATE \`Property\` SET \`Value\` = '$secure;COLLECTOR;TOKEN;TOKEN_FILE;CA_FILE' WHERE \`Property\` = 'SecureCustomProperties'"
