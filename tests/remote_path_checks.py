"""The behaviour of :class:`gradfit.storage.RemotePath` that gradfit relies on, as plain
asserts: run in the test process (tests/test_remote_path.py) and, by the same file, under each
other Python of 3.10 to 3.13 found on the machine, whose pathlib differs (3.12 changed how
subclasses are made, 3.13 moved pathlib into a package and gave ``is_dir`` and ``is_file`` a
``follow_symlinks`` keyword). Imports nothing but the standard library and gradfit.storage
(which needs no third-party package until it asks a store), so that a bare interpreter runs it:
where pyarrow is missing a stand-in of ``pyarrow.fs.FileType`` is installed, and the store's
answers are put in each path's cache (as a listing does)."""

from __future__ import annotations

import enum
import os
import pickle
import stat
import sys
import types
from pathlib import Path, PurePath


def _file_type() -> type:
    try:
        import pyarrow.fs as pafs
    except ImportError:
        stand_in = types.ModuleType("pyarrow.fs")
        stand_in.FileType = enum.Enum("FileType", "NotFound Unknown File Directory")  # type: ignore[attr-defined]
        package = types.ModuleType("pyarrow")
        package.fs = stand_in  # type: ignore[attr-defined]
        sys.modules.setdefault("pyarrow", package)
        sys.modules.setdefault("pyarrow.fs", stand_in)
        return stand_in.FileType  # type: ignore[attr-defined, no-any-return]
    return pafs.FileType  # type: ignore[no-any-return]


def check_remote_paths() -> None:
    file_type = _file_type()
    from gradfit import storage
    from gradfit.storage import RemotePath, as_path

    uri = "s3://bucket/data/a.csv.gz"
    p = as_path(uri)
    assert type(p) is RemotePath and isinstance(p, Path) and isinstance(p, PurePath)
    assert str(p) == uri and repr(p) == f"RemotePath({uri!r})"
    assert p.parts == ("s3:", "bucket", "data", "a.csv.gz")
    assert (p.name, p.suffix, p.suffixes, p.stem) == ("a.csv.gz", ".gz", [".csv", ".gz"], "a.csv")
    assert (p.scheme, p.store_path()) == ("s3", "bucket/data/a.csv.gz")
    for other in ("gs://bkt/k/x.parquet", "hdfs://namenode:8020/a/b.csv", "abfs://c@a.dfs.x/p"):
        assert str(as_path(other)) == other
    assert as_path("hdfs://namenode:8020/a/b.csv").store_path() == "/a/b.csv"
    assert as_path("abfs://c@a.dfs.x/p/q").store_path() == "c/p/q"

    # Derived paths (listings, globs, checkpoints beside an output) stay RemotePaths.
    derived = [
        ("s3://bucket/data", p.parent),
        ("s3://bucket/data/b.csv", p.parent / "b.csv"),
        ("s3://bucket/data/x/y.csv", p.parent.joinpath("x", "y.csv")),
        ("s3://bucket/data/z.parquet", p.with_name("z.parquet")),
        ("s3://bucket/data/a.csv.txt", p.with_suffix(".txt")),
        ("s3://bucket/data", RemotePath(*p.parts[:3])),  # storage.glob's prefix
        ("s3://bucket/data/c.csv", RemotePath(p.parent, "c.csv")),
    ]
    for text, path in derived:
        assert type(path) is RemotePath and str(path) == text, (text, path)
    assert [str(q) for q in p.parents][:2] == ["s3://bucket/data", "s3://bucket"]

    # One object, however spelt; ordering as the URIs' segments (sorted listings).
    same = [uri, "s3://bucket//data/a.csv.gz", "s3://bucket/data/a.csv.gz/"]
    assert len({as_path(text) for text in same}) == 1
    assert all(as_path(text) == p and hash(as_path(text)) == hash(p) for text in same)
    assert p != as_path("s3://bucket/data/b.csv") and p != as_path("gs://bucket/data/a.csv.gz")
    names = ["s3://b/z", "s3://b/a/c", "s3://b/a", "s3://b/a.csv"]
    by_segment = ["s3://b/a", "s3://b/a/c", "s3://b/a.csv", "s3://b/z"]
    assert [str(q) for q in sorted(as_path(n) for n in names)] == by_segment

    # Never a local path.
    for use in (os.fspath, open, os.stat):
        try:
            use(p)  # type: ignore[operator]
        except TypeError:
            pass
        else:  # pragma: no cover - the failure this guards against
            raise AssertionError(f"{use.__name__} took a RemotePath as a local path")
    for mode in ("r", "wb", "w"):
        try:
            p.open(mode)
        except ValueError:
            pass
        else:  # pragma: no cover
            raise AssertionError(f"open({mode!r}) of an object")
    assert p.resolve() is p and p.absolute() is p and str(p.expanduser()) == uri
    assert p.as_posix() == uri

    # What pathlib itself makes from a RemotePath (3.12+: patterns and relative paths are
    # RemotePaths too) is written as pathlib writes it, and matches as a PosixPath does.
    assert str(p.relative_to(as_path("s3://bucket"))) == "data/a.csv.gz"
    assert p.match("*.gz") and p.match("data/*.csv.gz") and not p.match("*.csv")
    assert str(RemotePath("x", "y")) == "x/y" and str(RemotePath()) == "."

    # Across processes (torchrun's workers get their settings pickled).
    copy = pickle.loads(pickle.dumps(p))
    assert type(copy) is RemotePath and copy == p and str(copy) == uri

    # The store's answers (here from the cache a listing fills in): every keyword any version
    # of pathlib passes is taken.
    found = storage._known(as_path("s3://bucket/f.csv"), _Info(file_type.File, 12))
    prefix = storage._known(as_path("s3://bucket/dir"), _Info(file_type.Directory, None))
    assert found.exists() and found.exists(follow_symlinks=False)
    assert found.is_file() and found.is_file(follow_symlinks=False) and not found.is_dir()
    assert prefix.is_dir() and prefix.is_dir(follow_symlinks=False) and not prefix.is_file()
    info = found.stat(follow_symlinks=False)
    assert stat.S_ISREG(info.st_mode) and info.st_size == 12
    assert stat.S_ISDIR(prefix.stat().st_mode)
    assert found.store_info().size == 12
    assert as_path("s3://bucket/new/").mkdir(parents=True, exist_ok=True) is None  # no-op


class _Info:
    """A FileInfo as a listing answers it."""

    def __init__(self, kind: object, size: int | None) -> None:
        self.type, self.size, self.mtime = kind, size, None


if __name__ == "__main__":
    check_remote_paths()
    print(f"RemotePath checks passed on Python {sys.version.split()[0]}")
