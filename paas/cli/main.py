"""Entry point of the ``paas`` command: lazy command registry and error -> exit code mapping.

Only this module turns ``PaasError`` into stderr lines and exit codes:

====  ==========================================================
code  meaning
====  ==========================================================
0     success
1     unexpected error
2     invalid argument (bad flag, bad name, bad size...)
3     not found (image, container)
4     already exists / conflict (name clash, running container)
5     failed precondition (daemon down, tool missing, not root)
6     an external command failed
125   ``container:run`` failed before the container started
126   ``container:run``: the command cannot be executed
127   ``container:run``: the command was not found
====  ==========================================================

``container:run``/``exec`` otherwise exit with the container process's status.
"""

from __future__ import annotations

import os
import sys

# not typing.TYPE_CHECKING: importing typing costs ~3 ms on every CLI call
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import sqlite3
    from collections.abc import Callable, Sequence
    from typing import NoReturn

    from ..config import Context
    from .parser import Parser

    Handler = Callable[["App", argparse.Namespace], int]

__all__ = ["COMMANDS", "App", "entry", "main"]

# name -> (module, summary). Modules are imported only when their command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "image:bootstrap": ("paas.cli.image", "Build a Debian base image with mmdebstrap"),
    "image:build": ("paas.cli.build", "Build an image from a Dockerfile"),
    "image:import": ("paas.cli.image", "Import a root filesystem tar as an image"),
    "image:ls": ("paas.cli.image", "List images"),
    "image:inspect": ("paas.cli.image", "Show an image's manifest and config as JSON"),
    "image:history": ("paas.cli.image", "Show the layers of an image"),
    "image:tag": ("paas.cli.image", "Give an image another name"),
    "image:rm": ("paas.cli.image", "Remove images"),
    "image:log": ("paas.cli.image", "Show the build log of an image made by image:build"),
    "image:prune": ("paas.cli.image", "Remove untagged images: dangling ones and the build cache"),
    "image:save": ("paas.cli.image", "Write an image as an OCI archive"),
    "image:load": ("paas.cli.image", "Load images from an OCI archive"),
    "container:run": ("paas.cli.run", "Run a command in a new container"),
    "container:ps": ("paas.cli.ps", "List containers"),
    "container:start": ("paas.cli.container", "Start stopped containers"),
    "container:stop": ("paas.cli.container", "Stop running containers (SIGTERM, then SIGKILL)"),
    "container:restart": ("paas.cli.container", "Restart containers"),
    "container:kill": ("paas.cli.container", "Send a signal to running containers"),
    "container:rm": ("paas.cli.container", "Remove containers"),
    "container:logs": ("paas.cli.container", "Show a container's output"),
    "container:exec": ("paas.cli.container", "Run a command in a running container"),
    "container:inspect": ("paas.cli.container", "Show a container's details as JSON"),
    "container:commit": ("paas.cli.container", "Make an image from a container's changes"),
    "container:prune": ("paas.cli.container", "Remove all stopped containers"),
    "container:port": ("paas.cli.container", "List a container's published ports"),
    "apps:create": ("paas.cli.apps", "Create an app"),
    "apps:list": ("paas.cli.apps", "List apps"),
    "apps:info": ("paas.cli.apps", "Show an app's domains, deploy branch and config count"),
    "apps:lock": ("paas.cli.locks", "Refuse deploys of an app until apps:unlock"),
    "apps:unlock": ("paas.cli.locks", "Allow deploys of a locked app again"),
    "config": ("paas.cli.apps", "Show an app's config vars (--format shell|json)"),
    "config:show": ("paas.cli.apps", "Show an app's config vars (same as config)"),
    "config:get": ("paas.cli.apps", "Print the value of one config var"),
    "domains": ("paas.cli.apps", "Show an app's domains"),
    "domains:add": ("paas.cli.apps", "Add domains to an app"),
    "domains:remove": ("paas.cli.apps", "Remove domains from an app"),
    "domains:set": ("paas.cli.apps", "Replace an app's domains"),
    "domains:set-global": ("paas.cli.apps", "Set the domain apps get APP.DOMAIN under"),
    "domains:clear-global": ("paas.cli.apps", "Clear the global domain (apps get APP.localhost)"),
    "git:set": ("paas.cli.apps", "Set an app's deploy-branch"),
    "settings": ("paas.cli.apps", "Show an app's settings"),
    "settings:set": ("paas.cli.apps", "Set an app setting (checks, keep-releases, nginx.KEY...)"),
    "settings:unset": ("paas.cli.apps", "Reset an app setting to its default"),
    "config:set": ("paas.cli.deploy", "Set config vars (a new release, restarted with zero downtime)"),
    "config:unset": ("paas.cli.deploy", "Unset config vars (a new release)"),
    "apps:destroy": ("paas.cli.deploy", "Remove an app: containers, images, repo, config, nginx"),
    "apps:rename": ("paas.cli.deploy", "Rename an app (its containers are started again)"),
    "ps": ("paas.cli.ops", "List an app's process containers (state, restarts, limits)"),
    "ps:report": ("paas.cli.ops", "Show an app's processes, restart policy and their status"),
    "ps:set": ("paas.cli.ops",
               "Set an app's restart-policy, init-process or host-ca-bundle (next release on)"),
    "network:set": ("paas.cli.network",
                    "Let an app reach link-local addresses (cloud metadata), or not"),
    "network:report": ("paas.cli.network", "Show an app's network settings"),
    "ps:scale": ("paas.cli.deploy", "Set how many containers of each process type run"),
    "ps:stop": ("paas.cli.deploy", "Stop an app's containers"),
    "ps:start": ("paas.cli.deploy", "Start an app's current release"),
    "ps:restart": ("paas.cli.deploy", "Restart an app with zero downtime"),
    "ps:rebuild": ("paas.cli.deploy", "Build the current commit again and deploy it"),
    "ps:restore": ("paas.cli.deploy", "Start every app that should run (after a reboot)"),
    "releases": ("paas.cli.deploy", "List an app's releases"),
    "releases:rollback": ("paas.cli.deploy", "Return to a previous release without rebuilding"),
    "run": ("paas.cli.deploy", "Run a one-off command in a new container of the app"),
    "enter": ("paas.cli.deploy", "Run a shell (or CMD) in a running container of an app"),
    "logs": ("paas.cli.deploy", "Show an app's output, merged across its containers"),
    "checks:enable": ("paas.cli.deploy", "Gate deploys on health checks (default)"),
    "checks:disable": ("paas.cli.deploy", "Only require new containers to keep running"),
    "checks:skip": ("paas.cli.deploy", "Switch traffic without any check"),
    "storage:mount": ("paas.cli.ops", "Bind-mount a host directory into an app's containers"),
    "storage:unmount": ("paas.cli.ops", "Remove a mount of an app (the directory is kept)"),
    "storage:list": ("paas.cli.ops", "List an app's mounts"),
    "storage:ensure-directory": ("paas.cli.ops",
                                 "Make a data directory for mounts, owned by the app user"),
    "resource:limit": ("paas.cli.ops", "Limit memory, cpus, pids, disk of an app's process types"),
    "resource:limit-clear": ("paas.cli.ops", "Clear an app's resource limits"),
    "resource:report": ("paas.cli.ops", "Show an app's resource limits"),
    "daemon:start": ("paas.cli.daemon", "Start paasd, the container supervisor"),
    "daemon:stop": ("paas.cli.daemon", "Stop paasd (containers keep running)"),
    "daemon:status": ("paas.cli.daemon", "Show whether paasd is running"),
    "certs:add": ("paas.cli.certs", "Install an app's TLS certificate (CERT KEY, or a tar on stdin)"),
    "certs:update": ("paas.cli.certs", "Same as certs:add"),
    "certs:generate": ("paas.cli.certs", "Install a self-signed certificate for an app's domains"),
    "certs:show": ("paas.cli.certs", "Print an app's certificate chain (PEM, never the key)"),
    "certs:report": ("paas.cli.certs", "Show an app's certificate: issuer, domains, expiry"),
    "certs:remove": ("paas.cli.certs", "Remove an app's certificate (back to plain HTTP)"),
    "nginx:set": ("paas.cli.nginx", "Set (or unset) an app's nginx setting, applied at once"),
    "nginx:show-config": ("paas.cli.nginx", "Show an app's installed nginx vhost"),
    "nginx:validate": ("paas.cli.nginx", "Check the live nginx config (nginx -t)"),
    "nginx:reload": ("paas.cli.nginx", "Reload nginx gracefully (starts it when down)"),
    "nginx:start": ("paas.cli.nginx", "Start the instance's nginx"),
    "nginx:stop": ("paas.cli.nginx", "Stop the instance's nginx (configs stay)"),
    "letsencrypt:set": ("paas.cli.letsencrypt",
                        "Set (or unset) a letsencrypt setting: --global email|server|graceperiod"),
    "letsencrypt:enable": ("paas.cli.letsencrypt",
                           "Get a certificate for an app's domains now, then renew it"),
    "letsencrypt:disable": ("paas.cli.letsencrypt",
                            "Stop renewing an app's certificate and remove it"),
    "letsencrypt:active": ("paas.cli.letsencrypt", "Print whether letsencrypt is enabled"),
    "letsencrypt:list": ("paas.cli.letsencrypt",
                         "List letsencrypt apps: expiry, next renewal, last error"),
    "letsencrypt:auto-renew": ("paas.cli.letsencrypt",
                               "Renew the certificates that are due (all apps, or APP)"),
    "letsencrypt:revoke": ("paas.cli.letsencrypt",
                           "Revoke an app's certificate at its CA and remove it"),
    "system:df": ("paas.cli.hygiene", "Show disk usage: images, layers, containers, build cache, logs"),
    "system:prune": ("paas.cli.hygiene",
                     "Remove stopped containers, expired releases' images, unused layers, old cache"),
    "report": ("paas.cli.doctor", "Check the instance; print each problem with its fix (doctor)"),
    "doctor": ("paas.cli.doctor", "Same as report"),
    "system:uninstall": ("paas.cli.system",
                         "Remove the instance's containers, paasd, bridge, rules, cgroups"),
    "git:url": ("paas.cli.git", "Print the URL to git push an app to"),
    "git:ssh-command": ("paas.cli.git", "Serve git push over ssh (the forced command of keys)"),
    "git:http-serve": ("paas.cli.git", "Serve git push over smart HTTP (gunicorn, foreground)"),
    "ssh-keys:add": ("paas.cli.keys", "Allow an ssh public key to git push"),
    "ssh-keys:list": ("paas.cli.keys", "List the ssh keys allowed to git push"),
    "ssh-keys:remove": ("paas.cli.keys", "Remove an ssh key"),
    "auth:add": ("paas.cli.keys", "Create a token for git push over HTTP (shown once)"),
    "auth:list": ("paas.cli.keys", "List the tokens for git push over HTTP"),
    "auth:remove": ("paas.cli.keys", "Remove a token"),
}

class App:
    """Lazily opened instance handles, shared by one command invocation.

    ``paths`` is cheap; ``ctx`` (full configuration) and ``conn`` (the state DB)
    are loaded on first use, so thin commands never pay for them."""

    def __init__(self, file_settings: dict[str, str] | None = None) -> None:
        from ..paths import paths_from_env

        self.paths = paths_from_env()
        # the settings that came from the settings file, not the environment
        # (paas.conffile): ssh-keys:add keeps them out of the key's forced command
        self.file_settings = dict(file_settings or {})
        # the exit code of a PaasError instead of its kind's (container:run: 125 until
        # the container runs, like docker run)
        self.error_exit: int | None = None
        self._ctx: Context | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def ctx(self) -> Context:
        if self._ctx is None:
            from ..config import load_context

            self._ctx = load_context()
        return self._ctx

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            from ..config import prepare_root
            from ..state import connect

            prepare_root(self.ctx.paths)
            self._conn = connect(self.ctx.paths.db)
        return self._conn


def _usage() -> str:
    lines = ["usage: paas COMMAND [ARGS...]", "", "A Dokku-style PaaS with its own container engine.", ""]
    groups: dict[str, list[str]] = {}
    for name, (_mod, summary) in COMMANDS.items():
        groups.setdefault(name.split(":")[0], []).append(f"  {name:<20} {summary}")
    for noun, rows in groups.items():
        lines.append(f"{noun} commands:")
        lines.extend(rows)
        lines.append("")
    lines.append("Run 'paas COMMAND --help' for a command's options.")
    lines.append("Environment: PAAS_ROOT (default /var/lib/paas) selects the instance; every")
    lines.append("PAAS_* setting the environment leaves unset comes from /etc/paas/paas.conf")
    lines.append("(PAAS_CONFIG names another file).")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(_usage())
        return 0
    if argv[0] in ("-v", "--version", "version"):
        from .. import __version__

        sys.stdout.write(f"paas {__version__}\n")
        return 0
    name = argv[0]
    if name not in COMMANDS:
        sys.stderr.write(f"error: unknown command '{name}' (run 'paas --help' to list commands)\n")
        return 2
    from .. import conffile
    from ..errors import PaasError, exit_code_for

    try:  # /etc/paas/paas.conf under the environment, before anything reads a setting
        file_settings = conffile.apply(os.environ)
    except PaasError as err:
        sys.stderr.write(f"error: {err.render()}\n")
        return exit_code_for(err)
    __import__(COMMANDS[name][0])  # not importlib.import_module: importlib is ~1 ms of imports
    module = sys.modules[COMMANDS[name][0]]
    app = App(file_settings)
    run_argv: Callable[[App, list[str]], int] | None = getattr(module, "run_argv", None)
    if run_argv is not None:  # parses its own arguments (container:run: paasd parses them)
        return _handled(lambda: run_argv(app, argv[1:]), app)
    from .parser import Parser

    configure: Callable[[str, Parser], Handler] = module.configure
    parser = Parser(prog=f"paas {name}", description=COMMANDS[name][1])
    handler = configure(name, parser)
    args = parser.parse_args(argv[1:])
    return _handled(lambda: handler(app, args), app)


def _handled(command: Callable[[], int], app: App) -> int:
    """Run a command; a ``PaasError`` becomes its one-line message and exit code."""
    from ..errors import PaasError, exit_code_for, from_environment

    try:
        try:
            return command()
        except Exception as err:  # a full disk is the operator's to fix, not a traceback
            known = from_environment(err)
            if known is None:
                raise
            raise known from err
    except PaasError as err:
        sys.stderr.write(f"error: {err.render()}\n")
        return app.error_exit or exit_code_for(err)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout closed early (e.g. piped into head): not an error worth a trace
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def entry() -> NoReturn:
    """The ``paas`` command (install.sh's launcher calls this).

    A command module that sets ``QUICK_EXIT = True`` leaves nothing for Python's
    shutdown to do (no threads, temporary files or open files of its own), so
    its process ends with ``os._exit`` once stdout and stderr are flushed:
    shutdown frees every imported module, ~6-9 ms that every ``container:run``
    paid after its container had exited."""
    code = main()
    if not _quick_exit() or _threads_alive():
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        os._exit(code)  # the reader went away (EPIPE, a hung-up terminal): nothing can reach it
    os._exit(code)


def _quick_exit() -> bool:
    """Whether the command that ran (its module is imported by now) set ``QUICK_EXIT``."""
    name = sys.argv[1] if len(sys.argv) > 1 else ""
    module = sys.modules.get(COMMANDS[name][0]) if name in COMMANDS else None
    return bool(getattr(module, "QUICK_EXIT", False))


def _threads_alive() -> bool:
    threading = sys.modules.get("threading")
    return threading is not None and threading.active_count() > 1


if __name__ == "__main__":
    entry()
