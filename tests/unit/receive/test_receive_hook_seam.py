"""``default_hook``: the deploy stage by default, the PAAS_RECEIVE_HOOK seam when set."""

from __future__ import annotations

from pathlib import Path

import pytest

from paas.config import load_context
from paas.errors import InvalidArgument
from paas.model import Push
from paas.receive import default_hook


def recording_hook(push: Push, progress: object) -> None:
    raise AssertionError("not called here")


def test_seam_loads_module_function(tmp_path: Path) -> None:
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    hook = default_hook(ctx, {"PAAS_RECEIVE_HOOK": f"{__name__}:recording_hook"})
    assert hook is recording_hook
    with pytest.raises(InvalidArgument):
        default_hook(ctx, {"PAAS_RECEIVE_HOOK": "no-colon"})


def test_default_is_deploy_push(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import paas.deploy.push as deploy

    calls = []
    monkeypatch.setattr(deploy, "deploy_push", lambda ctx, push, progress: calls.append(
        (ctx, push)))
    ctx = load_context({"PAAS_ROOT": str(tmp_path)})
    push = Push(app="web", ref="refs/heads/main", old="0" * 40, new="1" * 40, repo="/r")
    default_hook(ctx, {})(push, print)
    assert calls == [(ctx, push)]
