"""paasd: the one long-running process of an instance.

It supervises every container (``supervisor``: pipes -> json-file logs,
pidfd exit watching, reaping as child subreaper) and serves a small JSON
HTTP API on a unix socket (``httpd`` + ``router``; routes in ``routes``).
The CLI talks to it through ``client.DaemonClient``. Importing this package
is cheap: submodules are imported where used.
"""
