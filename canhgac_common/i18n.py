"""The CLIs' language: Vietnamese first, English by `--lang en` or an English locale (gettext)."""

from __future__ import annotations

import argparse
import gettext
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "ARGPARSE_DOMAIN",
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "choose_language",
    "current_language",
    "gettext_",
    "use_language",
]

# Catalogs: locale/vi/LC_MESSAGES/canhgac.po (the source, msgids in English) and the .mo
# compiled from it by scripts/i18n.sh (committed; `make i18n-check` fails on drift).
DOMAIN = "canhgac"
# argparse's own words ("usage:", "error:", "the following arguments are required"…): the
# msgids of the standard library's argparse, translated in locale/vi/LC_MESSAGES/argparse.po.
ARGPARSE_DOMAIN = "argparse"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("vi", "en")

_current: gettext.NullTranslations | None = None
_language = "vi"


def choose_language(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """`--lang X` (or `--lang=X`) on the command line, else the locale (LANGUAGE, LC_ALL,
    LC_MESSAGES, LANG as gettext reads them): English when it is English, else Vietnamese."""
    for i, arg in enumerate(argv):
        given = None
        if arg == "--lang" and i + 1 < len(argv):
            given = argv[i + 1]
        elif arg.startswith("--lang="):
            given = arg.partition("=")[2]
        if given in LANGUAGES:
            return given
        # Not ours (`--lang fr`): the locale's, and argparse refuses it in that language.
    for key in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(key, "")
        if value:
            return "en" if value.split(":")[0].lower().startswith("en") else "vi"
    return "vi"


def use_language(language: str) -> None:
    """Every later `gettext_` answers in `language` ("vi", "en")."""
    global _current, _language  # noqa: PLW0603 (one language per process, chosen by the CLI)
    _language = language
    if language == "en":
        _current = gettext.NullTranslations()  # the msgids are the English text
        words: gettext.NullTranslations = gettext.NullTranslations()
    else:
        _current = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])
        # A message of a newer Python's argparse the catalog lacks stays English.
        words = gettext.translation(
            ARGPARSE_DOMAIN, LOCALE_DIR, languages=[language], fallback=True
        )
    # argparse translates with the module-level `_` and `ngettext` it imported from gettext
    # (global domain, locale from the environment, not our choice), looked up at each call:
    # they are pointed at our catalog. Before a parser is built: "show this help message and
    # exit" is translated when its help option is added.
    vars(argparse).update(_=words.gettext, ngettext=words.ngettext)


def gettext_(message: str) -> str:
    """`message` (an English msgid) in the chosen language; until a CLI chooses one, the
    locale's (code used as a library, by a test or a service, follows its environment)."""
    if _current is None:
        use_language(choose_language((), os.environ))
    assert _current is not None
    return _current.gettext(message)


def current_language() -> str:
    """The language `gettext_` answers in (a default for options such as `report --lang`)."""
    return _language


def N_(message: str) -> str:
    """Marks `message` for the catalog where it cannot be translated yet (a table header
    defined at import time); `gettext_` translates it where it is shown."""
    return message
