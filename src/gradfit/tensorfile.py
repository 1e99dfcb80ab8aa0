"""safetensors files read safely: the shared reader of model files and checkpoints.

A safetensors file is an 8-byte little-endian header length ``n``, ``n`` bytes of JSON (a
``"__metadata__"`` object of strings, and per tensor its ``dtype``, ``shape`` and
``data_offsets`` into the data section), then the data section. Everything here is checked
before a byte of tensor data is allocated, so that a hostile or damaged file costs at most its
own size in memory and one line of error:

* the path must be a regular file: it is ``os.stat``-ed before it is opened (opening a named
  pipe blocks; a device such as ``/dev/zero`` never ends), and the opened descriptor is checked
  again, so that nothing swapped in between is read;
* the header length is bounded (:data:`MAX_HEADER_BYTES`, and what the file holds); the JSON is
  parsed defensively (:func:`parse_json`: nesting depth and number sizes bounded, never a
  ``RecursionError`` or an int-conversion ``ValueError``);
* every tensor's dtype, shape and data offsets are checked against each other and against the
  file size: the offsets must tile the data section exactly, and ``prod(shape) * itemsize``
  must be each tensor's byte count (in Python integers: a declared shape of
  ``[10**9, 10**9]`` is just a large number that does not fit the file).

**The seal.** :func:`seal` writes, beside the gradfit JSON document (metadata key
``"gradfit"``), a SHA-256 checksum (metadata key ``"gradfit_sha256"``, 64 lowercase hex
digits) of, in this order: the document's UTF-8 text; a newline; the tensor table as compact
JSON, ``{"name": ["DTYPE", [shape...], [begin, end]], ...}`` with the names sorted; a newline;
and the file's whole data section (the bytes after the header, as the table lays them out).
:meth:`TensorFile.verify` recomputes it from the bytes read, before any tensor is built: a
flipped bit in the weights, in the document or in the table (two tensors' offsets swapped)
is a checksum mismatch naming the file.

Every problem is a :class:`~gradfit.errors.ModelFileError` whose one-line message starts with
the path; the messages speak of a "model file" (:mod:`gradfit.checkpoint` rewords them).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import stat
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from gradfit.errors import GradfitError, ModelFileError
from gradfit.file_kinds import kind_of
from gradfit.storage import as_path, is_remote

if TYPE_CHECKING:
    import torch

__all__ = [
    "CHECKSUM_KEY",
    "DOCUMENT_KEY",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "Entry",
    "TensorFile",
    "check_in_range",
    "check_version",
    "header_document",
    "number_out_of_range",
    "parse_json",
    "parse_tensor_file",
    "read_tensor_file",
    "regular_file_size",
    "seal",
    "shown",
]

DOCUMENT_KEY = "gradfit"  # the metadata key of gradfit's JSON document
CHECKSUM_KEY = "gradfit_sha256"  # the metadata key of the seal (see the module doc)
MAX_HEADER_BYTES = 100_000_000
MAX_JSON_DEPTH = 32  # deepest nesting gradfit writes is under 10 (a covariance in the inference)
_HEADER_DEPTH = 3  # {name: {"shape": [...]}}
_MAX_DIMS = 8
_MAX_INT = 2**63  # JSON integers beyond int64 are no count, size or seed gradfit writes
_DTYPE_SIZES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# regular files only


def _not_regular(source: str, mode: int) -> ModelFileError:
    return ModelFileError(f"{source}: is not a regular file ({kind_of(mode)}); give a model file")


def regular_file_size(path: str | Path, source: str) -> int:
    """The size of ``path`` after checking, with ``os.stat`` (never by opening it: opening a
    named pipe blocks), that it is a regular file (symbolic links followed).

    Raises ``FileNotFoundError`` for a missing path (callers decide what absence means) and
    :class:`ModelFileError` for anything else that is not a readable regular file."""
    try:
        file = as_path(path)  # a file:// URI is its local path
        info = file.stat() if is_remote(file) else os.stat(file)
    except (FileNotFoundError, GradfitError):
        raise  # missing; or a store's one-line answer (no bucket, access denied)
    except PermissionError:
        raise ModelFileError(f"{source}: permission denied; check the file's permissions") from None
    except (OSError, ValueError) as exc:  # ENOTDIR, ELOOP, ENAMETOOLONG; NUL in the path
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ModelFileError(f"{source}: cannot read ({reason})") from None
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(source, info.st_mode)
    return int(info.st_size)


def _open_regular(path: str | Path, source: str) -> IO[bytes]:
    """``path`` opened for reading, checked again on the descriptor (the path may have been
    replaced since it was stat-ed). ``O_NONBLOCK`` keeps the open itself from blocking on a
    named pipe swapped in; it changes nothing for a regular file. An object in a store is
    opened by its store."""
    if is_remote(path):
        return as_path(path).open("rb")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(as_path(path), flags | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(source, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------------------------
# JSON, defensively


class _BadJSON(ValueError):
    """Why a JSON text was refused: ``reason`` completes "the ... <reason>"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_json(text: str | bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that fails only with :class:`ValueError` (a ``_BadJSON`` whose
    ``reason`` completes "the ...": "is not valid JSON", "is nested more than N levels deep",
    "holds a number too long to read" or "repeats a key"). Deep nesting, which raises
    ``RecursionError`` in the parser or in any recursive walk after it, integers over Python's
    digit limit and repeated keys (readers disagree on which value counts) are refused."""
    try:
        value = json.loads(
            text.decode("utf-8") if isinstance(text, bytes) else text,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise _BadJSON(f"is nested more than {max_depth} levels deep") from None
    except _BadJSON:
        raise
    except json.JSONDecodeError:
        raise _BadJSON("is not valid JSON") from None
    except UnicodeDecodeError:
        raise _BadJSON("is not valid UTF-8 JSON") from None
    except ValueError:  # "Exceeds the limit (4300 digits) for integer string conversion"
        raise _BadJSON("holds a number too long to read") from None
    if _deeper_than(value, max_depth):
        raise _BadJSON(f"is nested more than {max_depth} levels deep")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are unique: with a repeated key, what one reader sees (the
    last value) may not be what another does."""
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _BadJSON("repeats a key")
    return value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest more than ``limit`` levels (iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children)
    return False


def number_out_of_range(value: Any) -> tuple[str, Any] | None:
    """The path (``a.b[3]``) and value of the first number in a parsed JSON document that no
    gradfit file holds: an integer beyond int64 or a non-finite float (JSON has no infinity:
    ``1e400`` parses as one, while gradfit writes non-finite values as strings); None if all
    are in range. Iterative, for documents whose depth :func:`parse_json` bounded."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k)) for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not -_MAX_INT <= item < _MAX_INT:
                return where, item
        elif isinstance(item, float) and not math.isfinite(item):
            return where, item
    return None


def check_in_range(document: Any, source: str, corrupt: str, advice: str) -> None:
    """Refuse a document that holds a number out of range (:func:`number_out_of_range`):
    ``{source}: {corrupt}: {where} holds a number out of range ({value}); {advice}``."""
    out_of_range = number_out_of_range(document)
    if out_of_range is not None:
        where, value = out_of_range
        raise ModelFileError(
            f"{source}: {corrupt}: {where} holds a number out of range ({shown(value)}); {advice}"
        )


def check_version(
    version: Any, newest: int, corrupt: Callable[[Any], str], newer: Callable[[Any], str]
) -> int:
    """``version``, a format version read from a file (a model file's, or that of the
    interval data it holds), if this gradfit reads it: a positive integer (else a
    :class:`~gradfit.errors.ModelFileError` with the message ``corrupt(version)``) up to
    ``newest`` (else ``newer(version)``)."""
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(corrupt(version))
    if version > newest:
        raise ModelFileError(newer(version))
    return version


def shown(value: Any) -> str:
    """``value`` for a message: its repr when short, else its kind (a huge integer's repr may
    not even be computable: Python limits int-to-str conversion to 4300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    text = repr(value)
    return text if len(text) <= 60 else type(value).__name__


# ---------------------------------------------------------------------------------------------
# the file


@dataclass(frozen=True)
class Entry:
    """One tensor as the header declares it (checked against the file)."""

    dtype: str
    shape: tuple[int, ...]
    begin: int  # offsets into the data section
    end: int


@dataclass(frozen=True)
class TensorFile:
    """A safetensors file whose layout has been checked (its meaning not yet).

    ``data``: the whole file; ``entries``: the tensors by name; ``metadata``: the header's
    ``__metadata__`` (strings); ``data_start``: where the data section begins."""

    source: str
    data: bytes
    entries: dict[str, Entry]
    metadata: dict[str, str]
    data_start: int

    def checksum(self, text: str) -> str:
        """The seal of the document ``text`` with this file's tensors (see the module doc)."""
        table = {
            name: [entry.dtype, list(entry.shape), [entry.begin, entry.end]]
            for name, entry in self.entries.items()
        }
        return _digest(text, table, memoryview(self.data)[self.data_start :])

    def verify(self, text: str) -> None:
        """Check the seal of the document ``text`` against the bytes read."""
        stored = self.metadata.get(CHECKSUM_KEY)
        if stored is None:
            raise ModelFileError(
                f"{self.source}: corrupt: its checksum ({CHECKSUM_KEY}) is missing; refit or "
                "restore it"
            )
        if stored != self.checksum(text):
            raise ModelFileError(
                f"{self.source}: checksum mismatch: the file is corrupted; refit or restore it"
            )


def seal(tensors: dict[str, torch.Tensor], text: str) -> bytes:
    """The safetensors bytes of ``tensors`` with the document ``text`` and its checksum in the
    metadata. The data section does not depend on the metadata (offsets count from its start),
    so it is laid out once without the checksum, hashed, and written again with it."""
    from safetensors.torch import save as safetensors_save  # torch: reading needs none

    draft = safetensors_save(tensors, metadata={DOCUMENT_KEY: text})
    (length,) = struct.unpack("<Q", draft[:8])
    header = json.loads(draft[8 : 8 + length])
    table = {
        name: [entry["dtype"], entry["shape"], entry["data_offsets"]]
        for name, entry in header.items()
        if name != "__metadata__"
    }
    digest = _digest(text, table, memoryview(draft)[8 + length :])
    return safetensors_save(tensors, metadata={DOCUMENT_KEY: text, CHECKSUM_KEY: digest})


def _digest(text: str, table: dict[str, list[Any]], data: memoryview) -> str:
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(b"\n")
    digest.update(json.dumps(table, sort_keys=True, separators=(",", ":")).encode("utf-8"))
    digest.update(b"\n")
    digest.update(data)
    return digest.hexdigest()


def read_tensor_file(path: str | Path, max_bytes: int | None = None) -> TensorFile:
    """Read ``path`` (a regular file; see the module doc) and check its layout.

    Raises ``FileNotFoundError`` when ``path`` does not exist, :class:`ModelFileError` for
    everything else: not a regular file, more than ``max_bytes``, unreadable, truncated,
    corrupt or foreign."""
    source = str(path)
    size = regular_file_size(path, source)
    if max_bytes is not None and size > max_bytes:
        raise ModelFileError(
            f"{source}: {size} bytes is too large for a model file (at most {max_bytes})"
        )
    try:
        with _open_regular(path, source) as fh:
            entries, metadata, start = _layout(fh, size, source)
            fh.seek(0)
            data = fh.read(size + 1)
    except (FileNotFoundError, GradfitError):
        raise  # missing; or a store's one-line answer (no bucket, access denied)
    except PermissionError:
        raise ModelFileError(f"{source}: permission denied; check the file's permissions") from None
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot read ({exc.strerror or exc})") from None
    if len(data) != size:
        raise ModelFileError(f"{source}: the file changed while it was read; try again")
    return TensorFile(source, data, entries, metadata, start)


def parse_tensor_file(data: bytes, source: str) -> TensorFile:
    """:func:`read_tensor_file` for bytes already read (``source`` names them)."""
    entries, metadata, start = _layout(io.BytesIO(data), len(data), source)
    return TensorFile(source, data, entries, metadata, start)


def header_document(path: str | Path) -> dict[str, Any] | None:
    """The gradfit JSON document (metadata key ``"gradfit"``) of the safetensors file at
    ``path``, from its header alone (bounded; the data are not read); None when ``path`` is
    missing, unreadable, not a regular file, or not a safetensors file with such a document.
    Never raises for what the file holds: a cheap test of what a file is, e.g. a checkpoint
    (``document.get("kind") == "gradfit-checkpoint"``) or a model file
    (``document.get("format") == "gradfit-model"``), before replacing it."""
    source = str(path)
    try:
        size = regular_file_size(path, source)
        with _open_regular(path, source) as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                return None
            (length,) = struct.unpack("<Q", prefix)
            if not 2 <= length < MAX_HEADER_BYTES or length > size - 8:
                return None
            header = parse_json(fh.read(length), _HEADER_DEPTH)
    except (OSError, ValueError):  # ModelFileError and _BadJSON are ValueErrors
        return None
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    text = metadata.get(DOCUMENT_KEY) if isinstance(metadata, dict) else None
    if not isinstance(text, str):
        return None
    try:
        document = parse_json(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _foreign(prefix: bytes) -> str | None:
    """What a file that is not safetensors looks like, from its first bytes."""
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return "it looks like a Python pickle; gradfit never unpickles files"
    if prefix.startswith(b"PK\x03\x04"):
        return (
            "it looks like a ZIP archive such as torch.save writes; gradfit never unpickles files"
        )
    if prefix.startswith(b"\x1f\x8b"):
        return "it looks like a gzip-compressed file"
    if prefix and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in prefix):
        return "it looks like a text file"
    return None


def _not_ours(source: str, prefix: bytes, fallback: str) -> ModelFileError:
    what = _foreign(prefix)
    if what is not None:
        return ModelFileError(
            f"{source}: not a gradfit model file ({what}); save the model with gradfit"
        )
    return ModelFileError(f"{source}: {fallback}")


def _layout(fh: IO[bytes], size: int, source: str) -> tuple[dict[str, Entry], dict[str, str], int]:
    """Read the header from ``fh`` (at its start; ``size`` bytes in all) and check it: the
    tensor entries, the metadata, and where the data section begins."""
    prefix = fh.read(8)
    if len(prefix) < 8:
        raise _not_ours(
            source,
            prefix,
            f"too short to be a model file ({size} bytes); it is truncated or not a gradfit "
            "model file",
        )
    (length,) = struct.unpack("<Q", prefix)
    if length > size - 8 or length >= MAX_HEADER_BYTES or length < 2:
        if length < MAX_HEADER_BYTES and length >= 2 and _foreign(prefix) is None:
            raise ModelFileError(
                f"{source}: truncated: the header alone needs {length} bytes but only {size - 8} "
                "follow; the file was cut short, save the model again"
            )
        raise _not_ours(
            source, prefix, "not a safetensors model file (its header length is impossible)"
        )
    raw = fh.read(length)
    if len(raw) != length:
        raise ModelFileError(f"{source}: the file changed while it was read; try again")
    try:
        header = parse_json(raw, _HEADER_DEPTH)
    except _BadJSON as exc:
        raise _not_ours(
            source, prefix, f"corrupt: the safetensors header {exc.reason}; save the model again"
        ) from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{source}: corrupt: the safetensors header is not a JSON object")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ModelFileError(
            f"{source}: corrupt: the safetensors metadata must map names to strings; save the "
            "model again"
        )
    entries, end = _check_entries(header, source)
    expected = 8 + length + end
    if size < expected:
        raise ModelFileError(
            f"{source}: truncated: the file has {size} bytes but its header describes "
            f"{expected}; the file was cut short, save the model again"
        )
    if size > expected:
        raise ModelFileError(
            f"{source}: corrupt: {size - expected} unexpected bytes after the tensor data; "
            "save the model again"
        )
    return entries, metadata, 8 + length


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_INT


def _check_entries(header: dict[str, Any], source: str) -> tuple[dict[str, Entry], int]:
    """Each tensor entry checked (dtype known, shape and offsets non-negative integers, the
    offsets spanning exactly the declared size, all of them tiling the data section from 0
    without gap or overlap); the entries and the data section's size."""
    entries: dict[str, Entry] = {}
    for name, entry in header.items():
        item = entry if isinstance(entry, dict) else {}
        dtype, shape, offsets = item.get("dtype"), item.get("shape"), item.get("data_offsets")
        if (
            not isinstance(dtype, str)
            or not isinstance(shape, list)
            or len(shape) > _MAX_DIMS
            or not all(_count(n) for n in shape)
            or not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_count(n) for n in offsets)
            or offsets[0] > offsets[1]
        ):
            raise ModelFileError(
                f"{source}: corrupt: the header entry for tensor {_short(name)} is malformed; "
                "save the model again"
            )
        if dtype not in _DTYPE_SIZES:
            raise ModelFileError(
                f"{source}: corrupt: tensor {_short(name)} has the unknown dtype "
                f"{_short(dtype)}; save the model again"
            )
        nbytes = math.prod(shape) * _DTYPE_SIZES[dtype]  # Python integers: no overflow
        if nbytes != offsets[1] - offsets[0]:
            raise ModelFileError(
                f"{source}: corrupt: tensor {_short(name)} declares shape {_short(shape)} of "
                f"{dtype} ({nbytes} bytes) but its data offsets span {offsets[1] - offsets[0]} "
                "bytes; save the model again"
            )
        entries[name] = Entry(dtype, tuple(shape), offsets[0], offsets[1])
    end = 0
    for entry in sorted(entries.values(), key=lambda e: (e.begin, e.end)):
        if entry.begin != end:
            raise ModelFileError(
                f"{source}: corrupt: the tensors' data offsets overlap or leave gaps; save the "
                "model again"
            )
        end = entry.end
    return entries, end


def _short(value: Any) -> str:
    text = repr(value) if not isinstance(value, list) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
