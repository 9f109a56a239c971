"""What an app-supplied vhost template may not do, checked on its rendered text.

An app's template (``Route.template``) is the app owner's nginx config: it may
shape its own server blocks, but it runs in the instance's nginx master, which
is root. So the rendered text is tokenized like nginx does and refused when a
directive would read or write host files (``include``, ``root``, ``alias``,
certificates, temp paths, other log files), load code, or listen anywhere but
the instance's HTTP address (and its HTTPS address, ``ssl``/``http2`` only). The
exceptions are the app's own: ``ssl_certificate``/``ssl_certificate_key`` of its
own ``tls.pem`` and ``root`` of the ACME webroot (the challenge location); other
``ssl_*`` settings stay the instance's. ``nginx -t`` then checks the rest.

A template claiming another app's domain (nginx keeps the first server of a name
and only warns) is refused by ``Proxy``'s ``nginx -t`` step, which treats that warning
as an error. Not covered: exhausting resources with its own settings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..errors import InvalidArgument

__all__ = ["check_app_config", "directives"]

_DENIED = {"include", "root", "alias", "load_module", "pid", "user", "env", "daemon",
           "master_process", "working_directory", "lock_file", "error_page_file",
           "ssl_engine", "thread_pool", "worker_processes", "events", "http", "stream",
           "mail", "google_perftools_profiles", "proxy_store", "client_body_in_file_only",
           "dav_methods", "autoindex", "proxy_cache_path", "set_real_ip_from"}
# names refused by pattern: file and path arguments, embedded interpreters, certificates
_DENIED_RE = re.compile(r"(_path|_file|_temp_path|_certificate|_certificate_key|_dhparam|_crl"
                        r"|_key|_module|_modules|_require)$|^(perl|js_|lua|njs|ssl_)")
_TOKEN_RE = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|#[^\n]*|[;{}]|[^\s;{}"\']+')


def _tokens(text: str) -> Iterator[str]:
    for m in _TOKEN_RE.finditer(text):
        tok = m.group(0)
        if not tok.startswith("#"):
            yield tok


def directives(text: str) -> list[tuple[str, list[str]]]:
    """Every directive of an nginx config text: (name, arguments), blocks flattened."""
    out: list[tuple[str, list[str]]] = []
    current: list[str] = []
    for tok in _tokens(text):
        if tok in (";", "{", "}"):
            if current:
                out.append((current[0], current[1:]))
            current = []
        else:
            current.append(tok)
    if current:
        out.append((current[0], current[1:]))
    return out


def _unquote(arg: str) -> str:
    """The word nginx sees: quotes removed, its escapes of quotes and backslashes undone."""
    if len(arg) >= 2 and arg[0] == arg[-1] and arg[0] in "\"'":
        arg = arg[1:-1]
    return re.sub(r"\\([\"'\\])", r"\1", arg)


def _own_tls(name: str, plain: list[str], cert: str, acme_root: str) -> bool:
    """The few host-file directives an app's HTTPS server needs, with its own files only:
    its certificate (``{{ cert_file }}``) and the ACME webroot (``{{ acme_webroot }}``)."""
    if name in ("ssl_certificate", "ssl_certificate_key"):
        return bool(cert) and plain == [cert]
    return name == "root" and bool(acme_root) and plain == [acme_root]


def _listen_ok(plain: list[str], listen: str, https_listen: str) -> bool:
    if not plain or any(a in ("default_server", "default") for a in plain):
        return False
    if plain[0] == listen:
        return len(plain) == 1
    return bool(https_listen) and plain[0] == https_listen and set(plain[1:]) <= {"ssl",
                                                                                   "http2"}


def check_app_config(text: str, app: str, *, listen: str, logs: tuple[str, str],
                     https_listen: str = "", cert: str = "", acme_root: str = "") -> None:
    """Refuse (``InvalidArgument``) a rendered app template that reaches outside its vhost
    (``https_listen``, ``cert``, ``acme_root``: what its HTTPS server may use, "" for
    none)."""
    for word, args in directives(text):
        name = _unquote(word).lower()
        plain = [_unquote(a) for a in args]
        why = ""
        if _own_tls(name, plain, cert, acme_root):
            continue
        if name in _DENIED or _DENIED_RE.search(name):
            why = "it reads or writes host files or changes the server"
        elif name == "listen" and not _listen_ok(plain, listen, https_listen):
            where = f"{listen} or {https_listen} ssl http2" if https_listen else listen
            why = f"an app's server may only listen on {where} (not as default server)"
        elif (name == "access_log" and (not plain or plain[0] not in (logs[0], "off"))
              or name == "error_log" and (not plain or plain[0] != logs[1])):
            why = "an app may only log to its own log files ({{ access_log }}, {{ error_log }})"
        if why:
            raise InvalidArgument(
                f"the nginx template of app {app} uses '{name}', which is not allowed: {why}",
                "remove it from the app's template, or use the default template")
