"""A WSGI app whose dependency comes from the test's local package index."""

import tinygreet


def app(environ, start_response):
    body = f"{tinygreet.GREETING}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
