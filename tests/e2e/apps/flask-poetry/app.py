"""The flask-poetry sample app: Flask from PyPI, GET / names the app, its VERSION, Flask's
version and the interpreter's prefix (the app's venv, never the system's)."""

import importlib.metadata
import os
import sys

from flask import Flask

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")) as f:
    VERSION = f.read().strip()

app = Flask(__name__)


@app.get("/")
def index() -> str:
    return f"flask-poetry {VERSION} flask {importlib.metadata.version('flask')} prefix {sys.prefix}\n"
