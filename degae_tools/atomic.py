"""Files written whole or not at all: through a sibling that replaces the target when complete."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path, suffix: str = ".partial") -> Iterator[Path]:
    """Yield a sibling of `path` to write. When the block ends it replaces `path`; when the block
    raises (a full disk, a kill signal turned exception) it is deleted, so `path` is either
    complete or as it was, and no half-written file is left taking space."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + suffix)
    try:
        yield part
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)
