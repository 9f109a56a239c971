"""The e2e sample app of per-app operations: a stdlib WSGI app with a data directory.

GET /               -> "<VERSION file> <DYNO> <PAAS_RELEASE>"
GET /write/NAME/VAL -> writes VAL to /data/NAME (the app's mounted storage)
GET /read/NAME      -> the contents of /data/NAME (404 when missing)
"""

import os

DATA = "/data"

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")) as f:
    VERSION = f.read().strip()


def application(environ, start_response):
    parts = environ.get("PATH_INFO", "/").strip("/").split("/")
    status = "200 OK"
    if len(parts) == 3 and parts[0] == "write":
        with open(os.path.join(DATA, parts[1]), "w") as f:
            f.write(parts[2])
        body = "written"
    elif len(parts) == 2 and parts[0] == "read":
        try:
            with open(os.path.join(DATA, parts[1])) as f:
                body = f.read()
        except FileNotFoundError:
            status, body = "404 Not Found", "missing"
    else:
        body = " ".join([VERSION, os.environ.get("DYNO", "-"), os.environ.get("PAAS_RELEASE", "-")])
    data = (body + "\n").encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]
