"""Library versions recorded in a bundle, and the major-version check on load."""

from __future__ import annotations

import logging
import platform
from importlib import metadata

log = logging.getLogger(__name__)

#: Libraries whose major version must match for a bundle to load (per model family).
CRITICAL = {
    "mtnn": ("torch", "numpy", "rdkit", "scikit-learn"),
    "lgbm": ("lightgbm", "numpy", "rdkit", "scikit-learn"),
    "dc": ("deepchem", "torch", "numpy", "rdkit", "scikit-learn"),
    "blend": ("torch", "lightgbm", "numpy", "rdkit", "scikit-learn"),
}
RECORDED = ("fedadmet", "torch", "numpy", "rdkit", "scikit-learn", "scipy", "pandas", "lightgbm",
            "deepchem", "datamol")


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def library_versions(family: str = "mtnn") -> dict[str, str]:
    """Installed versions of the libraries a bundle depends on (and Python's)."""
    out = {"python": platform.python_version()}
    for dist in RECORDED:
        v = _version(dist)
        if v is not None:
            out[dist] = v
    return out


def major(version: str) -> str:
    return str(version).split(".")[0].split("+")[0]


def check_versions(saved: dict[str, str], family: str, installed: dict[str, str] | None = None) -> list[str]:
    """Problems (empty when fine): a critical library whose major version differs or is missing."""
    installed = installed if installed is not None else library_versions(family)
    problems = []
    for dist in CRITICAL.get(family, CRITICAL["mtnn"]):
        if dist not in saved:
            continue
        here = installed.get(dist)
        if here is None:
            problems.append(f"{dist} {saved[dist]} is required but not installed")
        elif major(here) != major(saved[dist]):
            problems.append(f"{dist} major version {major(saved[dist])} (bundle) vs {major(here)} (installed)")
    return problems
