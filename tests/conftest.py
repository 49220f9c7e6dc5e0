"""Every test: the CLIs in English (their default is Vietnamese), as the assertions read them."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Inherited by every CLI process a test starts; the i18n tests choose their language.
    os.environ["LANGUAGE"] = "en"
