"""``python -m paas.daemon`` runs paasd in the foreground."""

import sys

from .main import main

sys.exit(main())
