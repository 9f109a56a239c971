"""container:run's argv, parsed by paasd (``flags_from_argv``) into the flags ``RUN_FLAGS``
describes and ``options_from_flags`` validates."""

from __future__ import annotations

import pytest

from paas.errors import InvalidArgument
from paas.runtime.options import RUN_FLAGS, flags_from_argv, options_from_flags


def test_argv_becomes_every_flag_of_the_schema() -> None:
    flags = flags_from_argv(["--rm", "-e", "A=1", "-p", "8080:80", "--name", "web",
                             "debian:bookworm", "sh", "-c", "echo --help -d"])
    assert set(flags) == set(RUN_FLAGS)
    assert flags["rm"] is True and flags["detach"] is False
    assert flags["env"] == ["A=1"] and flags["publish"] == ["8080:80"]
    assert flags["image"] == "debian:bookworm"
    # everything after the image is the command's, flags included
    assert flags["command"] == ["sh", "-c", "echo --help -d"]
    opts = options_from_flags(flags)
    assert opts.name == "web" and opts.auto_remove


@pytest.mark.parametrize("argv, message", [
    (["--bogus", "debian"], "unrecognized arguments: --bogus"),
    ([], "required: image"),
    (["--memory"], "expected one argument"),
    (["-h", "debian"], "unrecognized arguments: -h"),  # the CLI answers --help itself
])
def test_usage_errors_are_invalid_argument_never_an_exit(argv: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as err:
        flags_from_argv(argv)
    assert "container:run --help" in err.value.hint


@pytest.mark.parametrize("argv", [None, "debian true", ["debian", 1], {"image": "debian"}])
def test_argv_must_be_a_list_of_strings(argv: object) -> None:
    with pytest.raises(InvalidArgument, match="list of strings"):
        flags_from_argv(argv)


def test_link_local_opt_in_and_tenant() -> None:
    plain = options_from_flags(flags_from_argv(["debian", "true"]))
    assert (plain.link_local, plain.tenant) == (False, "")
    opts = options_from_flags(flags_from_argv(["--allow-link-local", "--tenant", "app:web",
                                               "debian", "true"]))
    assert (opts.link_local, opts.tenant) == (True, "app:web")
    assert options_from_flags(flags_from_argv(["--tenant", "build", "debian"])).tenant == "build"
    for bad in ("app:", "app:Web", "web", "app:web/../x", "build2"):
        with pytest.raises(InvalidArgument, match="invalid tenant"):
            options_from_flags(flags_from_argv(["--tenant", bad, "debian"]))
