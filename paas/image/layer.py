"""Layer tars: deterministic creation and safe extraction, whiteouts both ways.

OCI form (in tars): ``.wh.NAME`` deletes NAME, ``.wh..wh..opq`` makes its
directory opaque. Overlay form (on disk): a 0/0 character device NAME, and
the ``trusted.overlay.opaque=y`` xattr on the directory.

Ids: on disk, snapshot files are owned by host ids shifted through an
``IdMap`` (userns-remap model); in tars they are container ids. ``idmap=None``
means no shifting.

Implementation: ``layer_write`` (deterministic tars), ``layer_extract`` +
``safetree`` (safe extraction), ``whiteout`` and ``digeststream`` (helpers).

Overlay upper dirs made with ``redirect_dir`` or ``metacopy`` are not
supported (mount overlays without them).

Not here: digests of blobs in the content store, snapshot bookkeeping.
"""

from __future__ import annotations

from typing import BinaryIO

from ..model import IdMap
from .layer_extract import Limits, extract_stream
from .layer_write import WriteOptions, write_tree

__all__ = ["Limits", "extract_layer", "write_layer"]


def write_layer(
    src_dir: str,
    out: BinaryIO,
    *,
    idmap: IdMap | None = None,
    source_date_epoch: int | None = None,
    overlay_upper: bool = False,
) -> str:
    """Write ``src_dir`` as an uncompressed layer tar to ``out``; return its DiffID ("sha256:...").

    Deterministic: entries sorted by path, owner names empty, numeric ids
    unshifted through ``idmap``, mtimes clamped to ``source_date_epoch``.
    With ``overlay_upper`` the dir is an overlay upper dir: whiteout devices
    and opaque xattrs become ``.wh.`` entries.
    """
    opts = WriteOptions(idmap, source_date_epoch, overlay_upper)
    return write_tree(src_dir, out, opts)


def extract_layer(
    tar: BinaryIO,
    dest_dir: str,
    *,
    idmap: IdMap | None = None,
    limits: Limits | None = None,
    expected_diff_id: str | None = None,
) -> str:
    """Safely extract layer ``tar`` into empty ``dest_dir`` in overlay form; return its DiffID.

    Raises ``InvalidArgument`` (and leaves nothing usable in ``dest_dir``: the
    caller removes it) for absolute or ``..`` paths, links escaping the root,
    paths through symlinks, hardlinks to unknown files, limits exceeded (default:
    ``Limits.from_env()``), or a DiffID mismatch. With ``idmap``, device nodes other
    than the harmless ones every container has (null, zero, tty...) are skipped. A gzip-compressed ``tar`` is decompressed transparently;
    the DiffID is then that of the uncompressed stream.
    """
    return extract_stream(
        tar, dest_dir, idmap=idmap, limits=limits or Limits.from_env(),
        expected_diff_id=expected_diff_id,
    )
