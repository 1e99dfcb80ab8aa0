"""Object storage: data, model files, checkpoints and outputs at URIs, through pyarrow's
filesystems.

A path may be a URI: ``s3://bucket/key`` (S3 and S3-compatible stores such as MinIO and Ceph),
``gs://bucket/key`` (Google Cloud Storage), ``hdfs://host:port/path`` (HDFS), ``abfs://`` and
``abfss://`` (Azure), or ``file:///path`` (a local path, as if written plainly). This module is
the one seam between such a URI and the rest of gradfit:

* :func:`as_path` turns the text of a path into a :class:`pathlib.Path` for a local file, or a
  :class:`RemotePath` for an object. A ``RemotePath`` is a ``Path`` whose ``str()`` is the URI
  as given (never ``s3:/bucket``), whose ``stat``, ``exists``, ``is_dir``, ``is_file`` and
  ``open("rb")`` ask the store, and which refuses to be used as a local path (``os.fspath``
  raises), so no code can read or write a local file by its mangled name.
* :func:`list_directory` and :func:`glob` list a prefix and match a pattern (``*`` and ``?``
  within one path segment, ``**`` across them).
* :func:`write_whole` writes an object whole or not at all: the content goes to a local
  temporary file first (a failure while writing it uploads nothing). On S3 an object of up to
  8 MiB is then sent in one PutObject request, which S3 stores whole or not at all; a larger
  one (and any object on another store) is uploaded to a hidden temporary object
  (``.{name}.{pid}-{hex}.tmp``) and moved over the target (S3 and GCS: one server-side copy;
  HDFS and Azure: a rename). On any failure the temporary object is deleted and the target is
  left as it was. A streaming upload would not do: pyarrow completes the object with what was
  sent when the stream is closed after an error. On S3 the temporary object is at the
  bucket's top level, not beside the target: pyarrow's delete of an object puts an empty
  ``parent/`` marker object for its parent "directory" (``EnsureParentExists``, whatever the
  filesystem's options), except when the parent is the bucket. So a write leaves exactly its
  object; where a policy refuses writing at the top level, the temporary object goes beside
  the target, and the marker is left.

Credentials and endpoints come from the standard environment, as each store's own tools read
them: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
``AWS_REGION`` / ``AWS_DEFAULT_REGION``, and ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` and
``AWS_MAX_ATTEMPTS`` (which pyarrow 26 does not read itself: gradfit passes them on);
``GOOGLE_APPLICATION_CREDENTIALS``; ``AZURE_STORAGE_ACCOUNT_KEY`` and Azure's default chain;
Hadoop's ``HADOOP_HOME``, ``CLASSPATH`` and ``ARROW_LIBHDFS_DIR``.

Every failure is a :class:`~gradfit.errors.DataError` of one line naming the URI and what is
missing: an unknown scheme, a filesystem pyarrow was built without, the bucket, the object,
the credentials. pyarrow.fs is imported only when a URI is used (0.06 s).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import stat
import tempfile
import urllib.parse
from collections.abc import Callable
from pathlib import Path, PosixPath, PurePosixPath
from typing import IO, Any

from gradfit.errors import DataError, GradfitError

__all__ = [
    "SCHEMES",
    "RemotePath",
    "as_path",
    "check_writable",
    "glob",
    "is_remote",
    "list_directory",
    "missing_object",
    "open_input",
    "same_object",
    "write_whole",
]

# The schemes read and written, and the name of their store in messages.
SCHEMES = {
    "s3": "S3",
    "gs": "Google Cloud Storage",
    "gcs": "Google Cloud Storage",
    "hdfs": "HDFS",
    "viewfs": "HDFS",
    "abfs": "Azure Blob Storage",
    "abfss": "Azure Blob Storage",
}
_SUPPORTED = "s3://, gs://, hdfs://, abfs:// (or abfss://), file:// and local paths"
_URI = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_COPY_BLOCK = 8 << 20  # bytes uploaded per write
# pyarrow (26) sends an S3 object smaller than its part size (10 MB) as one PutObject when the
# stream closes (with allow_delayed_open; measured against moto: 9 MiB in 3 writes, one PUT).
_ONE_PUT = 8 << 20
_BUFFER = 1 << 20  # the read buffer of an object opened for reading

# The key of a RemotePath's FileInfo in its __dict__ (not "_info": a slot of Path from 3.14).
_INFO = "_gradfit_store_info"
# One filesystem per (scheme, authority, environment): clients are costly to make.
_FILESYSTEMS: dict[tuple[str, ...], Any] = {}


def scheme_of(text: str) -> str | None:
    """The scheme of a URI (``"s3"`` for ``s3://bucket/key``), lower case; None for a path."""
    match = _URI.match(text)
    return match.group(1).lower() if match else None


def is_remote(path: object) -> bool:
    """Whether ``path`` (text or a Path) names an object in a store, not a local file."""
    if isinstance(path, RemotePath):
        return True
    return isinstance(path, str) and scheme_of(path) not in (None, "file")


def as_path(path: str | os.PathLike[str]) -> Path:
    """The Path for the text of a path: a :class:`RemotePath` for ``s3://``, ``gs://``,
    ``hdfs://`` and ``abfs://``; a local Path for ``file://`` URIs and plain paths.

    Raises
    ------
    DataError
        A URI of another scheme (``https://``, ``ftp://``): one line saying which are read.

    >>> str(as_path("s3://bucket/data/a.csv")), as_path("file:///tmp/a.csv")
    ('s3://bucket/data/a.csv', PosixPath('/tmp/a.csv'))
    """
    if isinstance(path, Path):
        return path
    text = os.fspath(path)
    scheme = scheme_of(text)
    if scheme is None:
        return Path(text)
    if scheme == "file":
        parsed = urllib.parse.urlsplit(text)
        if parsed.netloc not in ("", "localhost"):
            raise DataError(
                f"{text}: a file:// URI names a file on this machine (file:///path); for a "
                "file on another machine use its store's URI or a shared directory"
            )
        return Path(urllib.parse.unquote(parsed.path))
    if scheme not in SCHEMES:
        hint = (
            " (https:// is not a filesystem pyarrow can list or write: download the file, or "
            "use the store's own URI, such as s3://bucket/key)"
            if scheme in ("http", "https")
            else ""
        )
        raise DataError(
            f"{text}: unsupported URI scheme {scheme}://; gradfit reads and writes "
            f"{_SUPPORTED}{hint}"
        )
    if ".." in text.split("/")[3:]:
        # The HTTP clients of S3 and GCS resolve a ".." segment before the request is sent:
        # "s3://b/x/../d.csv" reads and writes the object d.csv, under a name no check of
        # inputs against outputs would match.
        raise DataError(
            f"{text}: a '..' in an object's name; stores resolve it (x/../d.csv is d.csv), "
            "so name the object without it"
        )
    return RemotePath(text)


class RemotePath(PosixPath):
    """An object in a store, named by its URI (see the module doc). ``str()`` is the URI;
    ``stat``, ``exists``, ``is_dir``, ``is_file`` and ``open("rb")`` ask the store; anything
    that would use it as a local path (``os.fspath``, ``open(path)``) raises TypeError.

    The same on Python 3.10 to 3.13 by construction, although pathlib's subclassing changed
    in 3.12 (paths made by ``type(self)(*segments)`` through ``with_segments`` and
    ``__init__``, where 3.10 and 3.11 filled in private fields of ``object.__new__``) and its
    internals again in 3.13: this class overrides neither ``__new__`` nor ``__init__``, keeps
    no state but pathlib's public ``parts`` (and a cache in its own ``__dict__``), computes its
    string from ``parts`` alone, and overrides every method that would reach the local
    filesystem, each accepting the keywords any of those versions passes (``follow_symlinks``,
    added to ``is_dir`` and ``is_file`` in 3.13). From 3.12 pathlib compares, hashes, orders
    and matches paths by ``str()``, and makes a pattern or a relative path (``relative_to``)
    a RemotePath too: such a path without a scheme is written as pathlib writes it
    (``tests/test_remote_path.py`` runs the behaviour gradfit relies on under each of those
    interpreters found on the machine)."""

    def __str__(self) -> str:
        parts = self.parts
        if not parts or not parts[0].endswith(":"):  # a pattern or a relative path, not a URI
            return str(PurePosixPath(*parts))
        scheme, *rest = parts
        return f"{scheme.rstrip(':')}://{'/'.join(rest)}"

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __fspath__(self) -> str:
        raise TypeError(f"{self}: an object in a store, not a local path")

    @property
    def scheme(self) -> str:
        return self.parts[0].rstrip(":").lower()

    def store_path(self) -> str:
        """The path within the filesystem, as pyarrow names it (``bucket/key`` for S3)."""
        rest = self.parts[1:]
        if self.scheme in ("hdfs", "viewfs"):
            return "/" + "/".join(rest[1:])
        if self.scheme in ("abfs", "abfss"):  # container@account.dfs.core.windows.net/path
            return "/".join([rest[0].split("@", 1)[0], *rest[1:]]) if rest else ""
        return "/".join(rest)

    def filesystem(self) -> Any:
        return _filesystem(self)

    def store_info(self) -> Any:
        """pyarrow's FileInfo for the object (its type NotFound when there is none). What was
        found is kept for this Path's life (a listing fills it in too): reading one object
        asks about it a dozen times (is it a directory, its size, ...), each a round trip to
        the store; what was not found is asked again. (Not ``info``: a property of Path from
        Python 3.14, which pathlib's own methods use there.)"""
        import pyarrow.fs as pafs

        known = self.__dict__.get(_INFO)
        if known is not None:
            return known
        fs = self.filesystem()
        try:
            found = fs.get_file_info(self.store_path())
        except (OSError, ValueError) as exc:
            raise store_error(self, exc) from None
        if found.type != pafs.FileType.NotFound:
            self.__dict__[_INFO] = found
        return found

    def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        import pyarrow.fs as pafs

        info = self.store_info()
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(errno.ENOENT, "no such object", str(self))
        mode = (
            stat.S_IFDIR | 0o755 if info.type == pafs.FileType.Directory else stat.S_IFREG | 0o644
        )
        mtime = info.mtime.timestamp() if info.mtime is not None else 0.0
        size = info.size or 0
        return os.stat_result((mode, 0, 0, 1, 0, 0, size, mtime, mtime, mtime))

    def exists(self, *, follow_symlinks: bool = True) -> bool:
        try:
            self.stat()
        except FileNotFoundError:
            return False
        return True

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        try:
            return stat.S_ISDIR(self.stat().st_mode)
        except FileNotFoundError:
            return False

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        try:
            return stat.S_ISREG(self.stat().st_mode)
        except FileNotFoundError:
            return False

    def mkdir(self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False) -> None:
        """Nothing for S3 and GCS (a prefix exists once an object is under it); a directory
        for HDFS and Azure."""
        if self.scheme in ("s3", "gs", "gcs"):
            return
        fs = self.filesystem()
        try:
            fs.create_dir(self.store_path(), recursive=parents)
        except (OSError, ValueError) as exc:
            raise store_error(self, exc, writing=True) from None

    def resolve(self, strict: bool = False) -> RemotePath:
        return self

    def absolute(self) -> RemotePath:
        return self

    def open(  # type: ignore[override]
        self,
        mode: str = "rb",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> IO[bytes]:
        """The object open for reading, buffered (``readline``, ``readinto``, ``seek``)."""
        if mode != "rb":
            raise ValueError(f"{self}: objects are opened for reading in binary ('rb') only")
        return io.BufferedReader(_Reader(open_input(self), self), buffer_size=_BUFFER)


class _Reader(io.RawIOBase):
    """pyarrow's random-access file as a raw Python stream (for BufferedReader and gzip). What
    the store refuses while reading (the object's GET denied where its HEAD was allowed, as
    under a key policy of SSE-KMS; the object deleted; the connection lost) is the one-line
    DataError of :func:`store_error`, not pyarrow's OSError."""

    def __init__(self, native: Any, path: RemotePath) -> None:
        self._native = native
        self._path = path

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._native.read(len(view))
        except OSError as exc:
            raise store_error(self._path, exc) from None
        view[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        try:
            return int(self._native.seek(offset, whence))
        except OSError as exc:
            raise store_error(self._path, exc) from None

    def tell(self) -> int:
        return int(self._native.tell())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._native.close()
        super().close()


def open_input(path: RemotePath) -> Any:
    """The object open as pyarrow's random-access file (for pyarrow's readers)."""
    fs = path.filesystem()
    try:
        return fs.open_input_file(path.store_path())
    except (OSError, ValueError) as exc:
        raise store_error(path, exc) from None


def list_directory(path: RemotePath) -> list[RemotePath]:
    """The objects directly under a prefix (not its sub-prefixes' contents)."""
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(path.store_path(), recursive=False)
    fs = path.filesystem()
    try:
        infos = fs.get_file_info(selector)
    except (OSError, ValueError) as exc:
        raise store_error(path, exc) from None
    return [
        _known(path / info.base_name, info) for info in infos if info.type == pafs.FileType.File
    ]


def _known(path: RemotePath, info: Any) -> RemotePath:
    """``path`` with its FileInfo from a listing kept (see :meth:`RemotePath.info`)."""
    path.__dict__[_INFO] = info
    return path


def glob(pattern: str) -> list[RemotePath]:
    """The objects whose URI matches ``pattern``: ``*``, ``?`` and ``[...]`` within one segment,
    ``**`` across segments. The listing starts at the deepest prefix without a wildcard."""
    import pyarrow.fs as pafs

    root = as_path(pattern)
    if not isinstance(root, RemotePath):
        raise DataError(f"{pattern}: not an object-storage URI")
    parts = root.parts
    wild = [i for i, part in enumerate(parts) if any(c in part for c in "*?[")]
    fixed = wild[0] if wild else len(parts)
    if fixed <= 1:
        raise DataError(f"{pattern}: a pattern in the bucket's name; name the bucket")
    base = RemotePath(*parts[:fixed])
    selector = pafs.FileSelector(base.store_path(), recursive=True, allow_not_found=True)
    fs = base.filesystem()
    try:
        infos = fs.get_file_info(selector)
    except (OSError, ValueError) as exc:
        raise store_error(base, exc) from None
    matcher = re.compile(_glob_regex("/".join(parts[fixed:])))
    prefix = base.store_path().rstrip("/") + "/"
    found = []
    for info in infos:
        if info.type != pafs.FileType.File or not info.path.startswith(prefix):
            continue
        relative = info.path[len(prefix) :]
        if matcher.fullmatch(relative):
            found.append(_known(base / relative, info))
    return found


def _glob_regex(pattern: str) -> str:
    """A regular expression for a glob pattern over '/'-separated names."""
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                body = "^" + body[1:] if body.startswith("!") else body
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def missing_object(path: RemotePath) -> DataError:
    """The message for an object that is not there: its bucket missing, or the object."""
    import pyarrow.fs as pafs

    if path.scheme in ("s3", "gs", "gcs") and len(path.parts) > 2:
        bucket = RemotePath(*path.parts[:2])
        if bucket.store_info().type == pafs.FileType.NotFound:
            return DataError(
                f"{path}: no bucket {path.parts[1]!r}{_where(path)}; check the bucket's name"
            )
    return DataError(f"{path}: no such object; check the path")


def same_object(path: str | os.PathLike[str]) -> tuple[str, str] | None:
    """What identifies an object among outputs and inputs: its URI without repeated or trailing
    slashes; None for a local path."""
    if isinstance(path, RemotePath) or (isinstance(path, str) and is_remote(path)):
        remote = path if isinstance(path, RemotePath) else as_path(path)
        # The scheme in one spelling: S3:// and s3://, gcs:// and gs://, abfss:// and abfs://
        # name the same object.
        scheme = _SAME_SCHEME.get(remote.scheme, remote.scheme)  # type: ignore[attr-defined]
        return ("uri", f"{scheme}://{'/'.join(remote.parts[1:])}")
    return None


_SAME_SCHEME = {"gcs": "gs", "abfss": "abfs"}


def check_writable(path: RemotePath, what: str) -> None:
    """Refuse, before any work, an output that cannot be written: a bucket (or container)
    that does not exist, a prefix with objects under it (a "directory"), no key at all."""
    import pyarrow.fs as pafs

    if len(path.parts) < 3:
        raise DataError(f"{path}: no object name; give the {what} a name, e.g. {path}/out")
    info = path.store_info()
    if info.type == pafs.FileType.Directory:
        raise DataError(f"{path}: is a prefix with objects under it; give a name for the {what}")
    bucket = RemotePath(*path.parts[:2])
    if path.scheme in ("s3", "gs", "gcs") and bucket.store_info().type == pafs.FileType.NotFound:
        raise DataError(
            f"{path}: no bucket {path.parts[1]!r}{_where(path)}; create it first or check the name"
        )


def write_whole(
    uri: str | os.PathLike[str],
    write: Callable[[IO[bytes]], object],
    error: type[GradfitError] = DataError,
) -> None:
    """Write an object whole or not at all (see the module doc): ``write`` writes the content to
    a local temporary file, which is uploaded to a temporary object beside ``path`` and moved
    over it. On any failure the temporary object is deleted, ``path`` left as it was."""
    import pyarrow.fs as pafs

    path = as_path(uri)
    if not isinstance(path, RemotePath):
        raise ValueError(f"{uri}: not an object in a store; write local files with atomic_write")
    fs = path.filesystem()
    target = path.store_path()
    path.__dict__.pop(_INFO, None)  # about to change
    try:
        info = fs.get_file_info(target)
    except (OSError, ValueError) as exc:
        raise _as(error, store_error(path, exc)) from None
    if info.type == pafs.FileType.Directory:
        raise error(f"{path}: is a prefix with objects under it; give a name to write to")
    parent, _, name = target.rpartition("/")
    temporary = f"{parent}/.{name}.{os.getpid()}-{secrets.token_hex(6)}.tmp"
    with tempfile.TemporaryFile(prefix="gradfit-upload-") as local:
        try:
            write(local)  # an exception here: nothing was uploaded
            local.flush()
        except OSError as exc:
            if isinstance(exc, GradfitError):
                raise
            raise error(
                f"{path}: cannot write the local copy to upload in {tempfile.gettempdir()} "
                f"({exc.strerror or exc}); set TMPDIR to a directory with room"
            ) from None
        size = local.seek(0, os.SEEK_END)
        local.seek(0)
        if path.scheme == "s3" and size <= _ONE_PUT:
            # One PutObject at close (allow_delayed_open): S3 stores it whole or not at all.
            try:
                with fs.open_output_stream(target) as upload:
                    upload.write(local.read())
            except (OSError, ValueError) as exc:
                raise _as(error, store_error(path, exc, writing=True)) from None
            return
        try:
            if path.scheme != "s3":
                _upload_and_move(fs, local, temporary, target)
                return
            # S3: pyarrow's delete_file (and move, a copy then a delete) puts an empty
            # "parent/" marker object after deleting, unless the parent is the bucket itself:
            # the temporary object goes to the bucket's top level, then is copied over the
            # target. Where a policy refuses writing there, beside the target (a marker left).
            top = f"{target.split('/', 1)[0]}/{temporary.rpartition('/')[2]}"
            try:
                _upload_and_move(fs, local, top, target, copy=True)
            except OSError as exc:
                if top == temporary or not _denied(str(exc)):
                    raise
                _upload_and_move(fs, local, temporary, target, copy=True)
        except (OSError, ValueError) as exc:
            if isinstance(exc, GradfitError):
                raise
            raise _as(error, store_error(path, exc, writing=True)) from None


def _upload_and_move(
    fs: Any, local: IO[bytes], temporary: str, target: str, *, copy: bool = False
) -> None:
    """Upload ``local`` (from its start) to the object ``temporary``, then move it over
    ``target`` (``copy``: one server-side copy, then the temporary object deleted; a failure of
    that delete leaves the target written and is not an error). On any failure before the
    target is written, the temporary object is deleted and the exception raised."""
    local.seek(0)
    try:
        with fs.open_output_stream(temporary) as upload:
            while block := local.read(_COPY_BLOCK):
                upload.write(block)
        if not copy:
            fs.move(temporary, target)
            return
        fs.copy_file(temporary, target)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.delete_file(temporary)
        raise
    with contextlib.suppress(Exception):
        fs.delete_file(temporary)


def _as(error: type[GradfitError], exc: GradfitError) -> GradfitError:
    return exc if type(exc) is error else error(str(exc))


def store_error(path: RemotePath, exc: BaseException, *, writing: bool = False) -> DataError:
    """A one-line DataError for what pyarrow or the store answered about ``path``."""
    message = " ".join(str(exc).split())
    upper = message.upper()
    bucket = path.parts[1] if len(path.parts) > 1 else ""
    env = _where(path)
    if (
        "NO_SUCH_BUCKET" in upper
        or "NOSUCHBUCKET" in upper
        or ("BUCKET" in upper and ("NOT FOUND" in upper or "DOES NOT EXIST" in upper))
    ):
        return DataError(f"{path}: no bucket {bucket!r}{env}; create it first or check the name")
    if _denied(upper):
        return DataError(
            f"{path}: access denied by the store{env}; check the credentials "
            f"({_credentials(path)}) and their permissions"
        )
    if isinstance(exc, FileNotFoundError) or "NO_SUCH_KEY" in upper or "NOT EXIST" in upper:
        return DataError(f"{path}: no such object; check the path")
    if "NETWORK_CONNECTION" in upper or "RESOLVE" in upper or "CONNECT" in upper:
        return DataError(f"{path}: cannot reach the store{env} ({_short(message)})")
    if "LIBJVM" in upper or "LIBHDFS" in upper or "JAVA" in upper:
        return DataError(
            f"{path}: HDFS needs Java and Hadoop's libhdfs, which this machine lacks (set "
            "JAVA_HOME, HADOOP_HOME and CLASSPATH, or ARROW_LIBHDFS_DIR)"
        )
    verb = "write" if writing else "read"
    return DataError(f"{path}: cannot {verb} ({_short(message)})")


_DENIED = (
    "ACCESS_DENIED",
    "ACCESSDENIED",
    "INVALID_ACCESS_KEY",
    "INVALIDACCESSKEY",
    "SIGNATURE_DOES_NOT_MATCH",
    "SIGNATUREDOESNOTMATCH",
    "FORBIDDEN",
    "UNAUTHORIZED",
    "EXPIRED",
    "CREDENTIALS",
    "PERMISSION",
)


def _denied(message: str) -> bool:
    """Whether the store's ``message`` refuses access (credentials or permissions)."""
    upper = message.upper()
    return any(word in upper for word in _DENIED)


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:197] + "..."


def _where(path: RemotePath) -> str:
    if path.scheme == "s3":
        endpoint = _s3_endpoint()
        return f" at {endpoint}" if endpoint else ""
    return ""


def _credentials(path: RemotePath) -> str:
    if path.scheme == "s3":
        return "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN or AWS_PROFILE"
    if path.scheme in ("gs", "gcs"):
        return "GOOGLE_APPLICATION_CREDENTIALS"
    if path.scheme in ("abfs", "abfss"):
        return "AZURE_STORAGE_ACCOUNT_KEY, or Azure's default credentials"
    return "the store's credentials"


def _s3_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


_S3_ENV = (
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_MAX_ATTEMPTS",
)


def _filesystem(path: RemotePath) -> Any:
    """pyarrow's filesystem for ``path``'s store (one per store and environment)."""
    import pyarrow as pa
    import pyarrow.fs as pafs

    authority = path.parts[1] if len(path.parts) > 1 else ""
    scheme = path.scheme
    if scheme == "s3":
        key: tuple[str, ...] = ("s3", *(os.environ.get(name, "") for name in _S3_ENV))
    elif scheme in ("gs", "gcs"):
        key = ("gs", os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", ""))
    else:
        key = (scheme, authority)
    if key in _FILESYSTEMS:
        return _FILESYSTEMS[key]
    try:
        if scheme == "s3":
            fs = _s3_filesystem(pafs)
        elif scheme in ("gs", "gcs"):
            fs = pafs.GcsFileSystem()
        else:
            fs, _ = pafs.FileSystem.from_uri(str(path))
    except ImportError as exc:
        raise DataError(
            f"{path}: this pyarrow was built without {SCHEMES[scheme]} support ({exc}); "
            "install a pyarrow wheel from PyPI or conda-forge"
        ) from None
    except pa.ArrowNotImplementedError as exc:
        raise DataError(
            f"{path}: this pyarrow was built without {SCHEMES[scheme]} support "
            f"({_short(str(exc))}); install a pyarrow wheel from PyPI or conda-forge"
        ) from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise store_error(path, exc) from None
    _FILESYSTEMS[key] = fs
    return fs


def _s3_filesystem(pafs: Any) -> Any:
    """S3, configured from the environment: pyarrow (26) reads the credentials, the region
    and AWS_PROFILE itself, but not AWS_ENDPOINT_URL(_S3): it is passed here, so that MinIO,
    Ceph and other S3-compatible stores are reached; its scheme (http or https) is kept."""
    options: dict[str, Any] = {}
    endpoint = _s3_endpoint()
    if endpoint:
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc + parsed.path.rstrip("/")
        options["scheme"] = parsed.scheme or "https"
    attempts = os.environ.get("AWS_MAX_ATTEMPTS", "")
    if attempts.isdigit() and int(attempts) >= 1:  # the AWS tools' variable; pyarrow's default: 3
        options["retry_strategy"] = pafs.AwsStandardS3RetryStrategy(max_attempts=int(attempts))
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    elif endpoint:
        options["region"] = "us-east-1"  # an S3-compatible store: no region lookup at AWS
    # allow_delayed_open: a small object is uploaded in one PutObject (see write_whole).
    return pafs.S3FileSystem(allow_delayed_open=True, **options)
