"""The image store: OCI layout blobs, tags, and overlay snapshots keyed by ChainID.

Entry point: ``ImageStore`` (``paas.image.store``). The runtime gets a
``model.Mount`` for a container's rootfs from it and never touches layers.
"""
