"""The CLIs' language: chosen by --lang or the locale; every help text formats in both."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

import agent.cli
import collector.cli
from canhgac_common.i18n import choose_language, gettext_, use_language


@pytest.mark.parametrize(
    ("argv", "environ", "language"),
    [
        ([], {}, "vi"),  # Vietnamese first
        ([], {"LANG": "C.UTF-8"}, "vi"),
        ([], {"LANG": "en_US.UTF-8"}, "en"),
        ([], {"LANG": "vi_VN.UTF-8", "LC_ALL": "en_GB.UTF-8"}, "en"),  # LC_ALL wins
        ([], {"LANGUAGE": "vi:en", "LANG": "en_US.UTF-8"}, "vi"),  # LANGUAGE first
        (["--lang", "en", "agent", "list"], {}, "en"),
        (["--lang=vi"], {"LANG": "en_US.UTF-8"}, "vi"),  # the option beats the locale
        (["--lang", "fr"], {"LANG": "en_US.UTF-8"}, "en"),  # not ours: argparse refuses it
        (["--lang=fr"], {}, "vi"),
    ],
)
def test_the_language_is_the_option_else_the_locale(
    argv: list[str], environ: dict[str, str], language: str
) -> None:
    assert choose_language(argv, environ) == language


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


@pytest.mark.parametrize("build", [agent.cli._parser, collector.cli._parser])
def test_every_help_text_is_translated_and_formats(build: object) -> None:
    assert callable(build)
    helps: dict[str, list[tuple[str, str]]] = {}
    for language in ("en", "vi"):
        use_language(language)
        parsers = list(_parsers(build()))
        for p in parsers:
            p.format_help()  # a stray % in a translation would raise here
        helps[language] = [
            (p.prog, str(a.help))
            for p in parsers
            for a in p._actions
            if a.help and a.help != argparse.SUPPRESS and a.dest != "help"
        ]
    use_language("en")
    assert len(helps["vi"]) == len(helps["en"]) > 10
    same = [en for en, vi in zip(helps["en"], helps["vi"], strict=True) if en == vi]
    assert [h for _, h in same if h != "HH:MM"] == [], same


def test_a_message_with_fields_keeps_them_in_vietnamese() -> None:
    use_language("vi")
    try:
        text = gettext_("token {id} revoked").format(id="ab12")
    finally:
        use_language("en")
    assert text == "đã thu hồi mã đăng ký ab12"


def test_argparse_speaks_the_chosen_language(capsys: pytest.CaptureFixture[str]) -> None:
    """argparse's own words (usage, error, required arguments, the help option) come from
    locale/vi/LC_MESSAGES/argparse.po; back in English with `en`."""
    try:
        use_language("vi")
        parser = collector.cli._parser()
        with pytest.raises(SystemExit) as done:
            parser.parse_args(["agent", "retire"])
        assert done.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("cách dùng: canhgac-collector agent retire ")
        assert err.endswith(
            "canhgac-collector agent retire: lỗi: thiếu các đối số bắt buộc: agent_id\n"
        )
        assert "hiện trợ giúp này rồi thoát" in parser.format_help()
        assert "tuỳ chọn:" in parser.format_help() and "options:" not in parser.format_help()
    finally:
        use_language("en")
    with pytest.raises(SystemExit):
        collector.cli._parser().parse_args(["agent", "retire"])
    assert "error: the following arguments are required: agent_id" in capsys.readouterr().err
