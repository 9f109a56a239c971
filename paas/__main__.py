"""``python -m paas`` runs the CLI."""

from .cli.main import entry

entry()
