import os
import stat

import pytest
from darklens.io.atomic import atomic_path


def test_atomic_write_removes_stale_part_files_of_its_target_only(tmp_path):
    target = tmp_path / "shard_0.h5"
    stale = tmp_path / ".shard_0.h5.k3x_9q2a.part"
    other_targets_parts = [
        tmp_path / ".shard_0.h5.meta.ab12cd34.part",  # part file of target shard_0.h5.meta
        tmp_path / ".shard_1.h5.ab12cd34.part",
    ]
    for path in [stale, *other_targets_parts]:
        path.write_bytes(b"half-written")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"complete")
    assert not stale.exists()
    assert target.read_bytes() == b"complete"
    assert all(path.exists() for path in other_targets_parts)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name] + [p.name for p in other_targets_parts]
    )


def test_failed_atomic_write_leaves_neither_target_nor_part_file(tmp_path):
    target = tmp_path / "out" / "split.json"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("killed")
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_write_gives_the_mode_of_the_umask(tmp_path, umask):
    """Outputs get 0666 less the umask, as open() would give, not the part file's 0600."""
    previous = os.umask(umask)
    try:
        with atomic_path(tmp_path / "metrics.csv") as tmp:
            tmp.write_text("a,b\n")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    mode = stat.S_IMODE((tmp_path / "metrics.csv").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE(plain.stat().st_mode)
