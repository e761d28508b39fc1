"""hutch.paths.remove_tree: shutil.rmtree's work without shutil's imports."""
import os

import pytest

from hutch.paths import remove_tree


def test_removes_a_tree_and_never_follows_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    top = tmp_path / "top"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "b" / "f").write_text("y")
    (top / "a" / "locked").mkdir(mode=0)       # as overlayfs leaves work/work
    os.mkfifo(top / "fifo")
    os.symlink(outside, top / "link")           # to a directory: the link goes, not its target
    os.symlink("nowhere", top / "a" / "dangling")
    remove_tree(str(top))
    assert not top.exists()
    assert (outside / "keep").read_text() == "x"


def test_a_missing_tree_raises_unless_told(tmp_path):
    with pytest.raises(FileNotFoundError):
        remove_tree(str(tmp_path / "none"))
    remove_tree(str(tmp_path / "none"), ignore_errors=True)


def test_a_symlink_given_as_the_tree_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "alias")
    with pytest.raises(OSError):
        remove_tree(str(tmp_path / "alias"))
    assert (tmp_path / "real").is_dir()
