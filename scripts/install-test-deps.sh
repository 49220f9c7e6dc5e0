#!/usr/bin/env bash
# System packages the test suite uses as real parts (called by `make test`).
# Installs only what is missing; needs root and apt-get (Debian), else says what to install.
# fonts-noto-core: the audit export PDF's Vietnamese font; poppler-utils: pdftotext/pdffonts read it back.
# gettext: xgettext/msgmerge/msgfmt for the CLIs' catalogs (scripts/i18n.sh --check).
set -euo pipefail
# systemd (systemd-analyze), python3-venv, dpkg-dev, lintian: the packages (tests/packaging).
# msitools (msiinfo), wixl: the MSI's tables (tests/packaging/test_msi.py). wine, wine64,
# osslsigncode: `make msi`'s build, signed, and its install/upgrade/uninstall round trip under
# wine's msiexec (tests/packaging/test_msi_wine.py, ~2.5 min: two builds, a fresh prefix).
packages=(openssl prometheus prometheus-alertmanager postgresql iproute2 nftables dnsmasq clamav clamav-daemon prometheus-node-exporter
  fonts-noto-core poppler-utils smartmontools nut-server nut-client gettext
  systemd python3-venv dpkg-dev lintian msitools wixl wine wine64 osslsigncode)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "tests need these Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing test dependencies: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
