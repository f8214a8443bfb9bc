"""Write files so that a reader never sees a half-written one.

Every output is first written to a temporary sibling ``.NAME.<random>.part`` and then renamed
with `os.replace`, which is atomic on POSIX file systems: a job killed mid-write leaves no file
at the final path. A SIGKILL does leave its part file behind; the next atomic write of the same
target removes it (each Snakemake job writes its own outputs, so no live writer owns it).

The temporary file is created private (mode 0600, by `tempfile.mkstemp`); before the rename it gets
the mode an ordinary `open()` would have given it, 0666 less the process's umask, so colleagues on
a shared file system read results as their umask allows.
"""

from __future__ import annotations

import glob
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

PART_SUFFIX = ".part"


def current_umask() -> int:
    """The process's file mode creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _part_prefix(final: Path) -> str:
    return f".{final.name}."


def stale_part_files(final: Path) -> list[Path]:
    """Part files left next to `final` by earlier, killed atomic writes of `final`.

    The random middle of a part name has no dot, while another target's part files that share
    this prefix (those of ``NAME.more``) have one: only `final`'s own part files match.
    """
    prefix = _part_prefix(final)
    pattern = glob.escape(str(final.parent / prefix)) + "*" + PART_SUFFIX
    stale = []
    for candidate in map(Path, glob.glob(pattern)):
        random_middle = candidate.name[len(prefix) : -len(PART_SUFFIX)]
        if random_middle and "." not in random_middle:
            stale.append(candidate)
    return stale


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path next to `path`; rename it to `path` only if the block succeeds.

    Stale part files of `path` (see `stale_part_files`) are removed first.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in stale_part_files(final):
        stale.unlink(missing_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=_part_prefix(final), suffix=PART_SUFFIX, dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
