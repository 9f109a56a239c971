"""Whether an app's HTTPS server staples OCSP responses: ``Stapling``, ``stapling_of``.

``paas.certs`` leaves a marker next to a certificate whose leaf names an OCSP
responder (``paas.certs.ocsp``). ``Proxy`` reads it here (``stapling_of``, the only
I/O: the marker and ``/etc/resolv.conf``) and hands the renderer a ``Stapling``,
which the renderer validates again: such a vhost loads ``tls.pem`` statically (nginx
staples only certificates it loaded itself) with ``ssl_stapling on``, ``ssl_stapling_verify
on`` and ``ssl_trusted_certificate chain.pem``, plus a ``resolver`` (the host's
nameservers) when the responder is a host name; an IP address needs none. Without
a marker the certificate stays read per handshake. Not here: rendering, the files.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from .params import ProxyParams

__all__ = ["RESOLV_CONF", "Stapling", "nameservers", "stapling_of"]

RESOLV_CONF = "/etc/resolv.conf"


@dataclass(frozen=True)
class Stapling:
    """An app's certificate is stapled: its responder and the resolvers it needs."""

    responder: str  # the OCSP URL of the leaf
    fingerprint: str  # the leaf's sha256 (hex): a new certificate is a new vhost
    resolvers: tuple[str, ...] = ()  # IP addresses; () when the responder is an IP


def nameservers(path: str = RESOLV_CONF) -> tuple[str, ...]:
    """The valid ``nameserver`` addresses of a resolv.conf (others skipped)."""
    found: list[str] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read(64 * 1024).splitlines()
    except OSError:
        return ()
    for line in lines:
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                found.append(str(ipaddress.ip_address(words[1].split("%")[0])))
            except ValueError:
                continue
    return tuple(dict.fromkeys(found))[:3]


def is_ip_host(url: str) -> bool:
    try:
        ipaddress.ip_address(urlsplit(url).hostname or "")
    except ValueError:
        return False
    return True


def stapling_of(params: ProxyParams, app: str, resolv_conf: str = RESOLV_CONF
                ) -> Stapling | None:
    """The stapling of ``app``'s installed certificate, None when it is read per
    handshake (no responder, no certificate, or no HTTPS)."""
    from ..certs.ocsp import marker

    if not params.https_port:
        return None
    found = marker(os.path.dirname(params.cert_file(app)))
    if found is None:
        return None
    url, fingerprint = found
    return Stapling(url, fingerprint, () if is_ip_host(url) else nameservers(resolv_conf))
