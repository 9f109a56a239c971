"""The e2e sample app: a stdlib WSGI app run by the stack's gunicorn.

GET /        -> "<VERSION file> <GREETING> <DYNO> <PAAS_RELEASE>"
GET /health  -> "ok"
GET /fail    -> 500 (for a failing app.json health check)
"""

import os
import sys

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")) as f:
    VERSION = f.read().strip()

print(f"booting hello {VERSION} as {os.environ.get('DYNO')}", flush=True)
sys.stdout.flush()


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    status = "200 OK"
    if path == "/health":
        body = "ok"
    elif path == "/fail":
        status, body = "500 Internal Server Error", "failing on purpose"
    else:
        body = " ".join([VERSION, os.environ.get("GREETING", "-"), os.environ.get("DYNO", "-"),
                         os.environ.get("PAAS_RELEASE", "-")])
        print(f"served {path} from {VERSION}", flush=True)
    data = (body + "\n").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
