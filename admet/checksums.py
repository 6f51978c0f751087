"""File checksums of a bundle folder (stdlib only: the shipped-model check runs before torch is imported)."""

from __future__ import annotations

import hashlib
from pathlib import Path

INDEX = "bundle.json"


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def folder_checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` except the index (``bundle.json``) that stores them."""
    return {str(p.relative_to(folder)): sha256_file(p)
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != INDEX}
