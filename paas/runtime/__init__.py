"""The runtime stage: containers on runc (OCI spec, lifecycle, logs).

Entry point: ``paas.runtime.lifecycle``. Gets the rootfs as a ``model.Mount``
from the image store; never reads layers itself.
"""
