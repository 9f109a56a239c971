"""A WSGI app that lists gunicorn and its dependency (the test's local index)."""

import tinygreet


def app(environ, start_response):
    body = f"{tinygreet.GREETING}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
