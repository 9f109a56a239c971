"""Pure builders of runc argv lists. Executing them is the caller's job (via ``paas.proc``)."""

from __future__ import annotations

__all__ = ["Runc"]


class Runc:
    """argv builders for one runc binary and state root (``runc --root``)."""

    def __init__(self, binary: str, root: str) -> None:
        self.binary = binary
        self.root = root

    def _base(self) -> list[str]:
        return [self.binary, "--root", self.root]

    def run(self, cid: str, bundle: str, *, detach: bool = False, pid_file: str | None = None,
            console_socket: str | None = None) -> list[str]:
        argv = self._base() + ["run", "--bundle", bundle]
        if detach:
            argv.append("--detach")
        if pid_file:
            argv += ["--pid-file", pid_file]
        if console_socket:
            argv += ["--console-socket", console_socket]
        return argv + [cid]

    def kill(self, cid: str, signal: str = "TERM", *, all_processes: bool = False) -> list[str]:
        argv = self._base() + ["kill"]
        if all_processes:
            argv.append("--all")
        return argv + [cid, signal]

    def delete(self, cid: str, *, force: bool = False) -> list[str]:
        return self._base() + ["delete"] + (["--force"] if force else []) + [cid]

    def state(self, cid: str) -> list[str]:
        return self._base() + ["state", cid]

    def exec(self, cid: str, process_json: str, *, tty: bool = False, detach: bool = False,
             pid_file: str | None = None) -> list[str]:
        argv = self._base() + ["exec", "--process", process_json]
        if tty:
            argv.append("--tty")
        if detach:
            argv.append("--detach")
        if pid_file:
            argv += ["--pid-file", pid_file]
        return argv + [cid]

    def pause(self, cid: str) -> list[str]:
        return self._base() + ["pause", cid]

    def resume(self, cid: str) -> list[str]:
        return self._base() + ["resume", cid]

    def list_ids(self) -> list[str]:
        return self._base() + ["list", "-q"]
