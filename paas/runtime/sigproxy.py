"""Signals to an attached ``container:run`` go to its container (docker run's sig-proxy).

``SignalProxy`` is installed before the CLI asks paasd to create the container,
so SIGINT, SIGTERM, SIGHUP and SIGQUIT never kill the CLI half-way (which left a
created container, its mount and its cgroup behind). Until the container runs
they are kept in ``pending`` (the CLI then does not start it, and reports an
exit of 128+N, so ``--rm`` removes it); once ``forward_to`` names a target, the
kept ones and every later one are forwarded. A container that ignores the
signal keeps running, and the CLI keeps waiting for it, like ``docker run``.

Only ``_signal`` (a builtin module) is imported: this runs on the CLI's hot path.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: ~3 ms of CLI start
if TYPE_CHECKING:
    import signal as _signal  # _signal has no stubs; signal re-exports it with enums
    from collections.abc import Callable
    from typing import Any
else:
    import _signal

__all__ = ["FORWARDED", "SignalProxy"]

FORWARDED = (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP, _signal.SIGQUIT)


class SignalProxy:
    """Catch ``FORWARDED`` signals from now on; ``restore()`` puts the old handlers back."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self._forward: Callable[[int], object] | None = None
        self._previous: dict[int, Any] = {s: _signal.signal(s, self._on) for s in FORWARDED}

    def _on(self, signum: int, _frame: object) -> None:
        if self._forward is None:
            self.pending.append(signum)
        else:
            self._forward(signum)

    def forward_to(self, forward: Callable[[int], object]) -> None:
        """From now on call ``forward(signum)`` for each signal; the kept ones first."""
        self._forward = forward
        while self.pending:
            forward(self.pending.pop(0))

    def restore(self) -> None:
        for s, handler in self._previous.items():
            _signal.signal(s, handler)
        self._previous = {}
