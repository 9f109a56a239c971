"""The CLI: a thin skin. Parse, call one library function, render.

Commands are Dokku-style ``noun:verb``; the registry in ``main`` is lazy so
``paas --help`` imports no command module.
"""
