"""The CLI's argparse parser: one-line errors, help formatted without ``shutil``.

Kept out of ``paas.cli.main`` so a command that never builds a parser here
(``container:run``: paasd parses its flags) does not import ``argparse`` (~3 ms).
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    from typing import Any, NoReturn

__all__ = ["Parser"]


def _columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` finds it ($COLUMNS first)."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    try:
        return os.get_terminal_size(1).columns
    except OSError:
        return 80


class _Formatter(argparse.HelpFormatter):
    """argparse's formatter given its width, so it does not ``import shutil`` (~3 ms of
    every command's start: argparse makes a formatter in ``add_argument``)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_columns() - 2)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong and where to look."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)
