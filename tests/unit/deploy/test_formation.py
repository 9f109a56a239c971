"""The scale of a deploy: app.json's formation on the first one, what the push says."""

from __future__ import annotations

import pytest

from paas.deploy.formation import formation_from_app_json, new_formation, scale_lines
from paas.errors import InvalidArgument
from paas.model import Release

PROCS = {"web": "gunicorn app:app", "worker": "python worker.py", "release": "migrate"}


def _release(**formation: int) -> Release:
    return Release(app="hello", version=3, image_id="sha256:" + "a" * 64,
                   processes=tuple(PROCS.items()), config=(),
                   formation=tuple(formation.items()), git_sha="0" * 40, description="",
                   created=0.0)


def test_app_json_formation_in_herokus_format() -> None:
    text = '{"formation": {"web": {"quantity": 2, "size": "standard-1x"}, "worker": {"quantity": 0}, "clock": {}}}'
    assert formation_from_app_json(text) == {"web": 2, "worker": 0}
    assert formation_from_app_json('{"healthchecks": {}}') == {}
    assert formation_from_app_json("[]") == {}


@pytest.mark.parametrize("text, message", [
    ('{"formation": [1]}', "formation must be an object"),
    ('{"formation": {"web": 2}}', "formation.web must be an object"),
    ('{"formation": {"web": {"quantity": "2"}}}', "quantity must be a whole number"),
    ('{"formation": {"web": {"quantity": -1}}}', "from 0 to 100"),
    ('{"formation": {"web": {"quantity": 101}}}', "from 0 to 100"),
    ('{"formation": {"web": {"quantity": true}}}', "whole number"),
    ('{"formation": {"release": {"quantity": 1}}}', "cannot scale the release"),
    ('{"formation": ', "not valid JSON"),
])
def test_bad_formations_are_one_clear_line(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as err:
        formation_from_app_json(text)
    assert err.value.hint


def test_first_deploy_takes_app_json_later_ones_keep_the_scale() -> None:
    assert new_formation(PROCS, None) == {"web": 1, "worker": 0}
    assert new_formation(PROCS, None, {"web": 2, "worker": 1}) == {"web": 2, "worker": 1}
    assert new_formation(PROCS, None, {"worker": 3}) == {"web": 1, "worker": 3}
    # a later deploy: ps:scale's numbers stand, app.json is not read again
    current = _release(web=3, worker=0)
    assert new_formation(PROCS, current, {"web": 2, "worker": 1}) == {"web": 3, "worker": 0}
    # a type new to the app starts at 0 (web at 1)
    assert new_formation({**PROCS, "clock": "x"}, _release(web=2)) == {
        "web": 2, "worker": 0, "clock": 0}


def test_a_formation_for_a_type_the_app_lacks_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="process type 'wrker'") as err:
        new_formation(PROCS, None, {"wrker": 1})
    assert err.value.hint == "the app's process types are: web, worker"


def test_the_push_tells_what_runs_and_how_to_start_the_rest() -> None:
    assert scale_lines("hello", {"web": 1, "worker": 0, "clock": 0}) == [
        "-----> Process types: web=1, worker=0, clock=0",
        "       worker is not running (scale 0): start it with 'paas ps:scale hello worker=1'",
        "       clock is not running (scale 0): start it with 'paas ps:scale hello clock=1'",
    ]
    assert scale_lines("hello", {"web": 2}) == ["-----> Process types: web=2"]
    assert scale_lines("hello", {"clock": 1, "web": 2})[0] == "-----> Process types: web=2, clock=1"
