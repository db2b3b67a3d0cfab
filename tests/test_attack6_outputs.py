"""Attack run 6 (session 14), outputs that destroyed data and the results store on a full disk: each
test fails on the code before its fix (A6-3, A6-7, A6-10, A6-11, A6-14, A6-17 in /tmp/attack6/LOG.md)."""

import os
import resource
import subprocess
import sys

import pytest

from octviewer.pipeline.store import ResultsStore, StoreError

# ---------------------------------------------------------------- A6-7: a full disk is not damage


def test_a_good_store_on_a_full_disk_is_left_where_it_is(tmp_path):
    """Under a file-size limit (EFBIG, as ENOSPC on a full disk) a good store was called "damaged
    (disk I/O error)" and moved aside: every remembered result gone from its place."""
    path = tmp_path / "results.sqlite"
    store = ResultsStore(path)
    store.put_study_headers("/study", {f"{i}.dcm": {"pad": "x" * 2000} for i in range(40)})
    store.close()
    before = path.read_bytes()
    limit = 8192
    code = ("import sys\nfrom octviewer.pipeline.store import ResultsStore, StoreError\n"
            f"try:\n    ResultsStore({str(path)!r})\nexcept StoreError as exc:\n    print(exc)\n    sys.exit(3)\n")
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard)))
    assert run.returncode == 3, run.stdout + run.stderr
    assert "cannot be written" in run.stdout and "disk full?" in run.stdout and str(path) in run.stdout
    assert "damaged" not in run.stdout and "moved" not in run.stdout
    assert [p.name for p in tmp_path.iterdir() if "damaged" in p.name] == []
    assert path.read_bytes() == before
    assert len(ResultsStore(path).study_headers("/study")) == 40  # room again: every result is still there


# ---------------------------------------------------------------- A6-3: a journal that is a link is named


@pytest.mark.parametrize("suffix", ["-wal", "-shm"])
def test_a_journal_that_is_a_link_is_named_and_nothing_is_moved(tmp_path, suffix):
    """A -wal/-shm companion that is a (dangling) link: the fresh store was moved aside as "damaged
    (unable to open database file)" on every run, and the link was never named."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    path = tmp_path / "data" / "results.sqlite"
    path.parent.mkdir()
    os.symlink(elsewhere / "stolen", str(path) + suffix)
    for _ in range(2):
        with pytest.raises(StoreError, match=f"results.sqlite{suffix} is a symbolic link"):
            ResultsStore(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name + suffix]
    assert list(elsewhere.iterdir()) == []


def test_a_fifo_as_the_store_is_not_moved_aside(tmp_path):
    """A FIFO as the store was moved aside as "damaged (disk I/O error)"."""
    path = tmp_path / "results.sqlite"
    os.mkfifo(path)
    with pytest.raises(StoreError, match="not a regular file"):
        ResultsStore(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.sqlite"]
