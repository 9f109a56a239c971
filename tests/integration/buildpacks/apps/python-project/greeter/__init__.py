"""The project's own package: installed into the venv by "pip install ."."""

import tinygreet

GREETING = f"{tinygreet.GREETING} via greeter"
