"""``ssh-keys:add|list|remove`` (who may push over ssh) and ``auth:add|list|remove``
(tokens for pushes over smart HTTP).

Keys go to ``PAAS_AUTHORIZED_KEYS`` (default ``PAAS_ROOT/ssh/authorized_keys``;
install.sh sets the ssh user's file in /etc/paas/paas.conf, so any shell gets it) as
``restrict,command="... paas git:ssh-command --key NAME"`` lines; lines paas did not
write are kept. ``ssh-keys:list`` shows what sshd really reads for the ssh user
(``paas.receive.sshd``): paas's keys, flagged when sshd never reads their file, and
every other key there (one without a forced command is a shell). Tokens are printed once by ``auth:add``; only a salted hash is kept.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import TYPE_CHECKING

from ..errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from ..receive.sshkeys import KeyStore
    from ..receive.tokens import TokenStore
    from .main import App, Handler
    from .parser import Parser

__all__ = ["configure"]


def configure(name: str, parser: Parser) -> Handler:
    noun, verb = name.split(":")
    if verb in ("add", "remove"):
        parser.add_argument("name", metavar="NAME")
    if name == "ssh-keys:add":
        parser.add_argument("keyfile", metavar="KEYFILE|-",
                            help="the public key file (e.g. ~/.ssh/id_ed25519.pub), - for stdin")
        return keys_add
    if verb == "list":
        parser.add_argument("--format", choices=("table", "json"), default="table")
        return keys_list if noun == "ssh-keys" else tokens_list
    if name == "ssh-keys:remove":
        return keys_remove
    if name == "auth:add":
        return tokens_add
    return tokens_remove


def _store(app: App) -> KeyStore:
    from ..receive import authorized_keys_path
    from ..receive.sshkeys import KeyStore

    return KeyStore(authorized_keys_path(app.paths.root))


def keys_add(app: App, a: argparse.Namespace) -> int:
    from ..receive.sshkeys import parse_public_key, ssh_command_for, validate_key_name

    validate_key_name(a.name)
    if a.keyfile == "-":
        text = sys.stdin.read()
    else:
        try:
            with open(a.keyfile, encoding="utf-8", errors="replace") as f:
                text = f.read(64 * 1024)
        except FileNotFoundError as err:
            raise NotFound(f"{a.keyfile}: no such file") from err
        except OSError as err:
            raise InvalidArgument(f"{a.keyfile}: {err.strerror}") from err
    key = parse_public_key(text)
    command = ssh_command_for(os.environ, app.paths.root, a.name, sys.argv[0], sys.executable,
                              from_file=app.file_settings)
    store = _store(app)
    added = store.add(a.name, key, command)
    sys.stdout.write(f"{added.name} {added.fingerprint}\n")
    return 0


def keys_list(app: App, a: argparse.Namespace) -> int:
    """The keys that let someone in as the ssh user: every line of the files sshd reads
    for that user (``sshd -T``), and paas's own file, each with a note when it does not
    work as paas meant."""
    from ..receive.sshd import audit, query
    from .render import emit_json, table

    view = query(os.environ)
    if view.error:
        sys.stderr.write(f"warning: {view.error}: cannot tell which keys sshd uses\n")
    elif view.keys_command:
        sys.stderr.write(f"warning: sshd also asks AuthorizedKeysCommand {view.keys_command}"
                         " for keys (not listed)\n")
    lines = audit(view, _store(app).path)
    if a.format == "json":
        emit_json([{"name": k.name, "fingerprint": k.fingerprint, "type": k.type,
                    "file": k.file, "authenticates": k.authenticates, "note": k.note}
                   for k in lines])
    else:
        table(["NAME", "FINGERPRINT", "NOTE"],
              [[k.name or "-", k.fingerprint, k.note] for k in lines])
    return 0


def keys_remove(app: App, a: argparse.Namespace) -> int:
    _store(app).remove(a.name)
    return 0


def _tokens(app: App) -> TokenStore:
    from ..receive.tokens import TokenStore

    return TokenStore.for_root(app.paths.root)


def tokens_add(app: App, a: argparse.Namespace) -> int:
    token = _tokens(app).add(a.name)
    sys.stdout.write(token + "\n")
    sys.stderr.write(f"note: this is the only time the token is shown; push with user "
                     f"{a.name!r} and the token as password\n")
    return 0


def tokens_list(app: App, a: argparse.Namespace) -> int:
    from .render import emit_json, table

    infos = _tokens(app).list()
    if a.format == "json":
        emit_json([{"name": t.name, "created": t.created} for t in infos])
    else:
        table(["NAME", "CREATED"],
              [[t.name, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t.created))]
               for t in infos])
    return 0


def tokens_remove(app: App, a: argparse.Namespace) -> int:
    _tokens(app).remove(a.name)
    return 0
