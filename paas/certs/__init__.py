"""TLS certificates of apps: validated, then installed where nginx reads them per handshake.

``install(ctx, app, chain_pem, key_pem, source=...)`` checks the chain and key (key
matches, chain ordered, dates, covers every domain of the app) before anything is
written, then renames ``PAAS_ROOT/certs/APP/tls.pem`` into place (no nginx reload:
nginx reads that file on every TLS handshake); ``info``, ``key_pem``, ``chain_pem``,
``remove``. ``paas.certs.selfsigned`` makes certificates for ``certs:generate``,
``paas.certs.bundle`` reads Dokku's tar of ``server.crt``/``server.key``;
``paas.certs.ocsp`` marks a certificate naming an OCSP responder for stapling (nginx
then loads it at reload: ``paas.deploy.tls`` installs and removes with a reload).

This package imports ``cryptography`` only where it parses or makes certificates, so
importing it stays cheap. Not here: ACME issuance and renewal, nginx's config.
"""

from __future__ import annotations

from .store import (
    SOURCES,
    CertInfo,
    app_domains,
    chain_pem,
    info,
    install,
    key_pem,
    remove,
    required_domains,
)

__all__ = ["SOURCES", "CertInfo", "app_domains", "chain_pem", "info", "install", "key_pem",
           "remove", "required_domains"]
