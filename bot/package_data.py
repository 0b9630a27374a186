"""Files shipped inside the package: catalogs, insurers, demo data, the audio code's voices.

Found through importlib.resources, so an installed wheel (pip install ., pipx) works from any
working directory, not only from a checkout.
"""

from __future__ import annotations

import io
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import TextIO


def package_file(*parts: str) -> Traversable:
    node = files("bot")
    for part in parts:
        node = node / part
    return node


def open_csv(path: Traversable) -> TextIO:
    """A shipped CSV as text the csv module can read: UTF-8 (BOM or not), newline=''."""
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8-sig", newline="")
