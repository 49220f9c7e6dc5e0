"""The CLIs' language: Vietnamese first, English by `--lang en` or an English locale (gettext)."""

from __future__ import annotations

import gettext
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
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
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("vi", "en")

_current: gettext.NullTranslations | None = None
_language = "vi"


def choose_language(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """`--lang X` (or `--lang=X`) on the command line, else the locale (LANGUAGE, LC_ALL,
    LC_MESSAGES, LANG as gettext reads them): English when it is English, else Vietnamese."""
    for i, arg in enumerate(argv):
        if arg == "--lang" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--lang="):
            return arg.partition("=")[2]
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
    else:
        _current = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language])


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
