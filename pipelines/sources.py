"""Open an input file safely: existence, emptiness, binary content, gzip by magic bytes, format sniffing.

Everything that makes a whole file unusable becomes an ``InputError`` naming the file and the problem.
"""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import InputError

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
_HEAD_BYTES = 64 * 1024

#: file-name suffix (after removing ``.gz``) -> format
SUFFIX_FORMATS: dict[str, str] = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv",
    ".sdf": "sdf", ".sd": "sdf", ".mol": "sdf", ".sdfile": "sdf",
    ".smi": "smi", ".smiles": "smi", ".ism": "smi", ".can": "smi",
    ".parquet": "parquet", ".pq": "parquet",
}
FORMATS = ("csv", "tsv", "sdf", "smi", "parquet")


@dataclass(frozen=True, slots=True)
class Source:
    """A checked input file."""

    path: Path
    """The file as given."""
    fmt: str
    """One of ``FORMATS``."""
    gzipped: bool
    """True when the bytes are gzip-compressed (detected by magic bytes, not by the name)."""
    encoding: str
    """Text encoding to read it with (``utf-8``, ``utf-8-sig`` or ``latin-1``); ``binary`` for Parquet."""


def _read_head(path: Path) -> tuple[bytes, bool]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(_HEAD_BYTES)
    except PermissionError as exc:
        raise InputError(f"{path}: cannot be read (permission denied)") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not raw:
        raise InputError(f"{path}: the file is empty (0 bytes)")
    if not raw.startswith(GZIP_MAGIC):
        return raw, False
    try:
        with gzip.open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: looks gzip-compressed but cannot be decompressed ({exc})") from exc
    return head, True


def _looks_binary(head: bytes) -> bool:
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control > max(2, len(head) // 100)


def _encoding(head: bytes) -> str:
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"  # spreadsheet exports often start with a byte-order mark
    # A head cut at _HEAD_BYTES may end in the middle of a multi-byte character: then up to 3
    # trailing bytes are ignored. A whole (short) file must decode completely.
    cuts = range(4) if len(head) >= _HEAD_BYTES else range(1)
    for cut in cuts:
        try:
            head[: len(head) - cut].decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            continue
    return "latin-1"


def _sniff_text(text: str) -> str:
    if "$$$$" in text or "M  END" in text:
        return "sdf"
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "\t" in first:
        return "tsv"
    if "," in first:
        return "csv"
    return "smi"


def inspect_source(path: str | Path, fmt: str | None = None) -> Source:
    """Check a file and work out its format (``fmt`` overrides the name-based guess)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    head, gzipped = _read_head(path)
    if not head.strip():
        raise InputError(f"{path}: the file is empty (no data{' after decompression' if gzipped else ''})")
    if head.startswith(PARQUET_MAGIC):
        return Source(path, "parquet", gzipped, "binary")
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown input format {fmt!r}; known formats: {', '.join(FORMATS)}")
    if fmt == "parquet":
        raise InputError(f"{path}: not a Parquet file (no PAR1 magic bytes)")
    if _looks_binary(head):
        raise InputError(
            f"{path}: looks like a binary file, not text; expected CSV/TSV/SDF/SMILES (optionally gzipped) "
            "or Parquet"
        )
    encoding = _encoding(head)
    if fmt is None:
        name = path.name.lower()
        if name.endswith(".gz"):
            name = name[:-3]
        fmt = SUFFIX_FORMATS.get(Path(name).suffix)
    if fmt is None:
        fmt = _sniff_text(head.decode(encoding, errors="replace"))
        log.info("%s: format guessed from content: %s", path, fmt)
    return Source(path, fmt, gzipped, encoding)


def as_source(path: Source | str | Path, fmt: str | None = None) -> Source:
    """``path`` itself when it is a checked :class:`Source` already, else :func:`inspect_source`."""
    if isinstance(path, Source):
        if fmt is not None and fmt != path.fmt:
            raise InputError(f"{path.path}: inspected as {path.fmt}, asked to read as {fmt}")
        return path
    return inspect_source(path, fmt)


def open_text(source: Source) -> io.TextIOBase:
    """A text stream over the (decompressed) file."""
    if source.gzipped:
        return gzip.open(source.path, "rt", encoding=source.encoding, newline="")
    return source.path.open("r", encoding=source.encoding, newline="")


def read_text(source: Source) -> str:
    """The whole (decompressed) text of the file."""
    try:
        with open_text(source) as fh:
            return fh.read()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise InputError(f"{source.path}: cannot be read as text ({exc})") from exc
