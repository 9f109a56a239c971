"""Router: pattern matching, query params, and PaasError -> status/body mapping."""

from __future__ import annotations

from typing import Any

import pytest

from paas.daemon.router import Response, Router, error_body, status_for
from paas.errors import (
    AlreadyExists,
    CommandFailed,
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PaasError,
)


def echo(tag: str) -> Any:
    def handler(params: dict[str, str], body: dict[str, Any]) -> Response:
        return 200, {"tag": tag, "params": params, "body": body}
    return handler


@pytest.fixture
def router() -> Router:
    r = Router()
    r.add("GET", "/containers", echo("list"))
    r.add("GET", "/containers/{id}", echo("get"))
    r.add("POST", "/containers/{id}/start", echo("start"))
    r.add("post", "/containers/{id}/kill/{signal}", echo("kill"))
    return r


def test_params_are_extracted(router: Router) -> None:
    status, obj = router.dispatch("POST", "/containers/abc123/start", {"x": 1})
    assert status == 200
    assert obj == {"tag": "start", "params": {"id": "abc123"}, "body": {"x": 1}}
    _, obj = router.dispatch("POST", "/containers/c1/kill/TERM", {})
    assert obj["params"] == {"id": "c1", "signal": "TERM"}


def test_segment_param_does_not_cross_slashes(router: Router) -> None:
    assert router.dispatch("GET", "/containers/a/b", {})[0] == 404
    assert router.dispatch("GET", "/containers/", {})[0] == 404
    assert router.dispatch("GET", "/containers", {})[1]["tag"] == "list"


def test_query_is_merged_but_path_params_win(router: Router) -> None:
    _, obj = router.dispatch("GET", "/containers/c1?all=1&id=evil&tail=", {})
    assert obj["params"] == {"all": "1", "id": "c1", "tail": ""}


def test_percent_encoded_path(router: Router) -> None:
    _, obj = router.dispatch("GET", "/containers/my%20app", {})
    assert obj["params"]["id"] == "my app"


def test_unknown_route_is_404_with_message(router: Router) -> None:
    status, obj = router.dispatch("GET", "/images", {})
    assert status == 404
    assert obj["kind"] == "NotFound" and "/images" in obj["message"]


def test_wrong_method_is_400_naming_allowed(router: Router) -> None:
    status, obj = router.dispatch("DELETE", "/containers/c1/start", {})
    assert status == 400
    assert obj["kind"] == "InvalidArgument" and "POST" in obj["hint"]


def test_duplicate_route_is_rejected(router: Router) -> None:
    with pytest.raises(ValueError):
        router.add("GET", "/containers/{id}", echo("again"))
    with pytest.raises(ValueError):
        router.add("GET", "no-slash", echo("bad"))


@pytest.mark.parametrize(("err", "status"), [
    (NotFound("x"), 404),
    (InvalidArgument("x"), 400),
    (AlreadyExists("x"), 409),
    (Conflict("x"), 409),
    (FailedPrecondition("x"), 412),
    (CommandFailed("x"), 500),
    (PaasError("x"), 500),
])
def test_status_for_categories(err: PaasError, status: int) -> None:
    assert status_for(err) == status


def test_handler_errors_become_bodies(router: Router) -> None:
    def boom(params: dict[str, str], body: dict[str, Any]) -> Response:
        raise Conflict(f"container {params['id']} is running", "stop it first")

    router.add("DELETE", "/containers/{id}", boom)
    status, obj = router.dispatch("DELETE", "/containers/c9", {})
    assert status == 409
    assert obj == {"message": "container c9 is running", "hint": "stop it first", "kind": "Conflict"}


def test_command_failed_body_carries_returncode() -> None:
    body = error_body(CommandFailed("runc failed", "h", returncode=7, stderr="boom"))
    assert body["returncode"] == 7 and body["stderr"] == "boom" and body["kind"] == "CommandFailed"
