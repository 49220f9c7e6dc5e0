#!/usr/bin/env bash
# The CLIs' message catalogs (GNU gettext, Debian package `gettext`): the only way they change.
#   scripts/i18n.sh          extract the msgids from the CLIs into canhgac.pot, merge them into
#                            each language's .po (translate the new entries there), compile .mo
#   scripts/i18n.sh --check  fail if canhgac.pot or a .mo differs from what the sources and the
#                            .po files give, or if a .po has an untranslated or fuzzy entry
# argparse.po (domain "argparse": argparse's own words, routed by canhgac_common.i18n) is kept by
# hand and compiled here; --check also fails when the running Python's argparse ($PYTHON, else
# python3) has a message it lacks.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=canhgac_common/locale
sources=(agent/cli.py agent/settings.py agent/transport/wire.py collector/cli.py
  collector/cli_reports.py collector/cli_releases.py collector/report.py collector/cli_settings.py collector/agent_settings.py
  collector/store/settings.py collector/processes.py collector/errors.py collector/config.py collector/sites.py
  collector/meetings.py collector/alerts/notify/config.py collector/store/alerts.py
  collector/store/database.py collector/store/meetings.py collector/store/store.py
  canhgac_common/config.py canhgac_common/output.py canhgac_common/units.py
  canhgac_common/yamlfile.py)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=$dir
if [ "${1:-}" = --check ]; then
  out=$work/check
  mkdir "$out"
fi
xgettext --language=Python --keyword=_ --keyword=N_ --keyword=gettext_ --from-code=UTF-8 --sort-output --add-location=file \
  --omit-header --output="$out/canhgac.pot" "${sources[@]}"
status=0
for po in "$dir"/*/LC_MESSAGES/canhgac.po; do
  lang_dir=$(dirname "$po")
  if [ "${1:-}" = --check ]; then
    mkdir -p "$out/$lang_dir"
    merged=$out/$lang_dir/canhgac.po
    msgmerge --quiet --no-fuzzy-matching --sort-output --add-location=file -o "$merged" "$po" "$out/canhgac.pot"
    cmp -s "$merged" "$po" || { echo "$po: not in step with the sources; run scripts/i18n.sh" >&2; status=1; }
    if [ -n "$(msgattrib --untranslated --no-obsolete "$po")$(msgattrib --only-fuzzy "$po")" ]; then
      echo "$po: untranslated or fuzzy entries (msgattrib --untranslated $po)" >&2
      status=1
    fi
    msgfmt --check -o "$out/$lang_dir/canhgac.mo" "$po"
    cmp -s "$out/$lang_dir/canhgac.mo" "$lang_dir/canhgac.mo" \
      || { echo "$lang_dir/canhgac.mo: not compiled from $po; run scripts/i18n.sh" >&2; status=1; }
  else
    # Written out (not --update, which keeps an unchanged file's wrapping): what --check compares.
    msgmerge --quiet --no-fuzzy-matching --sort-output --add-location=file -o "$po.new" "$po" "$dir/canhgac.pot"
    mv "$po.new" "$po"
    msgfmt --check -o "$lang_dir/canhgac.mo" "$po"
  fi
done
argparse_py=$("${PYTHON:-python3}" -c 'import argparse; print(argparse.__file__)')
xgettext --language=Python --keyword=_ --keyword=ngettext:1,2 --from-code=UTF-8 --omit-header \
  --output="$work/argparse.pot" "$argparse_py"
for po in "$dir"/*/LC_MESSAGES/argparse.po; do
  lang_dir=$(dirname "$po")
  if [ "${1:-}" = --check ]; then
    msgmerge --quiet --no-fuzzy-matching -o "$work/merged.po" "$po" "$work/argparse.pot"
    if [ -n "$(msgattrib --untranslated --no-obsolete "$work/merged.po")" ]; then
      echo "$po: $argparse_py has messages not in it; add them, translated (xgettext" \
        "--language=Python --keyword=_ --keyword=ngettext:1,2 -o - $argparse_py)" >&2
      status=1
    fi
    if [ -n "$(msgattrib --untranslated --no-obsolete "$po")$(msgattrib --only-fuzzy "$po")" ]; then
      echo "$po: untranslated or fuzzy entries" >&2
      status=1
    fi
    msgfmt --check -o "$work/argparse.mo" "$po"
    cmp -s "$work/argparse.mo" "$lang_dir/argparse.mo" \
      || { echo "$lang_dir/argparse.mo: not compiled from $po; run scripts/i18n.sh" >&2; status=1; }
  else
    msgfmt --check -o "$lang_dir/argparse.mo" "$po"
  fi
done
if [ "${1:-}" = --check ]; then
  cmp -s "$out/canhgac.pot" "$dir/canhgac.pot" \
    || { echo "$dir/canhgac.pot: not extracted from the sources; run scripts/i18n.sh" >&2; status=1; }
fi
exit $status
