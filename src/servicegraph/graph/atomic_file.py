"""Files that appear whole or not at all: the projection, exports.

:func:`atomic_write` gives a file to write under a temporary name in the target's folder
(``mkstemp``: two writers never share one) and renames it over the target once it is complete;
on any failure the temporary file is removed and the target keeps what it held."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_write"]


@contextmanager
def atomic_write(path: Path, mode: str = "wb", **options: Any) -> Iterator[IO[Any]]:
    """``open(…, mode, **options)`` on a temporary file that becomes ``path`` at the end."""
    fd, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **options) as out:
            yield out
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
