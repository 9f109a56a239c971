"""Procfile and bin/release parsing (pure)."""

from __future__ import annotations

import json

import pytest

from paas.build.procfile import PROCESSES_LABEL, merge, parse_procfile, parse_release, processes_of
from paas.errors import InvalidArgument
from paas.model import ImageConfig


def test_procfile_lines_comments_and_crlf() -> None:
    text = "# processes\r\nweb: gunicorn app:app --bind 0.0.0.0:$PORT\r\n\r\nworker:python w.py\n"
    assert parse_procfile(text) == {"web": "gunicorn app:app --bind 0.0.0.0:$PORT",
                                    "worker": "python w.py"}


@pytest.mark.parametrize(("text", "fragment"), [
    ("web gunicorn\n", "line 1: expected 'name: command'"),
    ("web:\n", "line 1"),
    ("ok: x\nbad name: y\n", "line 2: invalid process type"),
    ("web: a\nweb: b\n", "line 2: process type 'web' is defined twice"),
])
def test_procfile_errors_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match=fragment):
        parse_procfile(text)


def test_release_defaults() -> None:
    text = ("---\naddons: []\ndefault_process_types:\n  web: python -m gunicorn a:b\n"
            "  worker: \"python w.py\"\nconfig_vars:\n  X: y\n")
    assert parse_release(text) == {"web": "python -m gunicorn a:b", "worker": "python w.py"}
    assert parse_release("default_process_types: {}\n") == {}
    assert parse_release("") == {}


def test_release_bad_line() -> None:
    with pytest.raises(InvalidArgument):
        parse_release("default_process_types:\n  not a process line\n")


def test_procfile_wins_over_defaults() -> None:
    assert merge({"web": "a", "x": "b"}, {"web": "c"}) == {"web": "c", "x": "b"}


def test_processes_label_round_trip() -> None:
    cfg = ImageConfig(labels=((PROCESSES_LABEL, json.dumps({"web": "run"})),))
    assert processes_of(cfg) == {"web": "run"}
    assert processes_of(ImageConfig()) == {}
