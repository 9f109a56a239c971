"""A WSGI app with no dependencies: gunicorn comes from the stack image."""


def application(environ, start_response):
    body = b"hello from a stdlib wsgi app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
