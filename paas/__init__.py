"""paas: a Dokku-style PaaS with its own container engine.

Pipeline: receive -> build -> image store -> runtime (+ network) -> proxy -> release.
This package root holds nothing but the version; see the subpackages.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
