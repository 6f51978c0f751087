"""Featurizer base class, the string-keyed registry, spec parsing and the ``FeatureMatrix`` record."""

from __future__ import annotations

import abc
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from rdkit import Chem

from pipelines.errors import InputError
from pipelines.registry import Registry

log = logging.getLogger(__name__)

#: Bumped when the stored layout or the meaning of a featurizer's output changes (cache keys use it).
FORMAT_VERSION = 1


class Featurizer(abc.ABC):
    """One molecule -> one fixed-length numeric vector.

    Subclasses set ``name`` and implement :meth:`featurize_mol`, :meth:`params` and
    :attr:`feature_names`. ``featurize_mol`` raises (any exception) when a molecule cannot be
    featurized; the callers turn that into a NaN row with ``valid=False``, never an empty row.
    ``storage_dtype`` is the compact dtype used between processes and in the on-disk cache.
    """

    name: ClassVar[str]
    storage_dtype: ClassVar[np.dtype] = np.dtype(np.float32)

    @abc.abstractmethod
    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        """The feature vector of one (sanitized) molecule, shape ``(n_features,)``."""

    @abc.abstractmethod
    def params(self) -> dict[str, Any]:
        """The parameters that determine the output (radius, size, options...)."""

    @property
    @abc.abstractmethod
    def feature_names(self) -> tuple[str, ...]:
        """One name per output column."""

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def library_versions(self) -> dict[str, str]:
        from rdkit import __version__ as rdkit_version

        return {"rdkit": rdkit_version}

    def config(self) -> dict[str, Any]:
        """Everything that identifies the output: name, parameters, width, library versions."""
        return {
            "name": self.name,
            "params": self.params(),
            "n_features": self.n_features,
            "format_version": FORMAT_VERSION,
            "versions": self.library_versions(),
        }

    def config_hash(self) -> str:
        """A short stable digest of :meth:`config` (names cache folders)."""
        text = json.dumps(self.config(), sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def compact(self, block: np.ndarray) -> np.ndarray:
        """Convert a chunk of rows to the compact storage dtype (lossless for the float32 output)."""
        return block.astype(self.storage_dtype, copy=False)

    def __getstate__(self) -> dict[str, Any]:
        # RDKit generator objects do not pickle; subclasses rebuild them lazily.
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_lazy")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params()})"


@dataclass(slots=True)
class FeatureMatrix:
    """Features of a list of molecules, one row per input (rows align with the input order)."""

    X: np.ndarray
    """float32 ``(n, d)``; a row that could not be featurized is NaN where its featurizer failed."""
    valid: np.ndarray
    """bool ``(n,)``; False when the SMILES did not parse or any featurizer failed for it."""
    spec: str
    """The featurizer spec, names joined with ``+`` (e.g. ``morgan_count+rdkit2d``)."""
    config: dict[str, Any]
    """``{"spec", "n_features", "featurizers": [Featurizer.config(), ...]}``: store it with models."""
    feature_names: tuple[str, ...] = field(default=())
    """Column names, prefixed by featurizer (``rdkit2d:MolWt``, ``morgan_count:17``)."""

    def __len__(self) -> int:
        return self.X.shape[0]


#: name -> featurizer class (the shared registry shape, ``pipelines.registry``).
FEATURIZERS: Registry[Featurizer] = Registry("featurizer")


def register(name: str) -> Callable[[type[Featurizer]], type[Featurizer]]:
    """Class decorator: make a featurizer available under ``name`` (its default configuration)."""
    return FEATURIZERS.register(name)


def available_featurizers() -> list[str]:
    """Registered featurizer names, sorted."""
    return FEATURIZERS.names()


def get_featurizer(name: str) -> Featurizer:
    """A new featurizer instance by registry name; unknown names raise ``InputError``."""
    return FEATURIZERS.get(name)()


def parse_spec(spec: str) -> tuple[str, ...]:
    """``"morgan_count+rdkit2d"`` -> ``("morgan_count", "rdkit2d")``, validated."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError("featurizer spec is empty; give names joined with '+', e.g. morgan_count+rdkit2d")
    names = tuple(part.strip() for part in spec.split("+"))
    if any(not part for part in names):
        raise InputError(f"featurizer spec {spec!r} has an empty name between '+' signs")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"featurizer spec {spec!r} names {duplicates} more than once")
    unknown = [n for n in names if n not in FEATURIZERS]
    if unknown:
        raise InputError(
            f"unknown featurizer(s) {unknown} in spec {spec!r}; available: {', '.join(available_featurizers())}"
        )
    return names


