"""ACME (RFC 8555) certificates for apps: HTTP-01 through paas's own nginx.

- ``model``: the values and protocols the stages exchange (CA, webroot, cert sink).
- ``issue``: the issuance sequence; ``renew``: when a certificate is due, the run.
- ``server``: certbot's ``acme`` library as the CA; ``account``: the instance's account.
- ``webroot``: the challenge files; ``store``: settings and per-app state (state.db).
- ``ops``: the operations wired to the real pieces (CLI and paasd call these).

Importing this package imports neither ``acme`` nor ``cryptography``; ``server`` does.
Not here: the certificate store (``paas.certs``) and nginx (``paas.proxy``).
"""

from __future__ import annotations

__all__: list[str] = []
