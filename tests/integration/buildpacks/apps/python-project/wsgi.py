"""A WSGI app of a PEP 517 project (no requirements.txt): the default web process."""

import greeter


def application(environ, start_response):
    body = f"{greeter.GREETING}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
