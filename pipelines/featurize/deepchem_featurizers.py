"""DeepChem-backed featurizers: ``dc_circular``, ``dc_rdkit_descriptors``, ``dc_molgraphconv``.

DeepChem is imported lazily (it takes seconds), once per process. DeepChem featurizers return an
empty array for a molecule they cannot handle; here any such result (wrong shape, exception) is
an error, which the caller turns into a NaN row with ``valid=False``, never an empty row.

``dc_molgraphconv`` wraps ``MolGraphConvFeaturizer(use_edges=True)``, whose output is a graph
(30 features per atom, 11 per bond). A fixed-width model input is built from it by pooling:
``[mean of atom features (30), max of atom features (30), mean of bond features (11),
number of atoms, number of bonds]`` = 73 columns. Graph models that need the full graph should
call DeepChem directly; this vector is what an MLP or gradient boosting can use. DeepChem refuses
molecules with a single heavy atom (e.g. methane): those rows are invalid.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any

import numpy as np
from rdkit import Chem

from pipelines.featurize.base import Featurizer, register

log = logging.getLogger(__name__)

_NODE_FEATURES = 30
_EDGE_FEATURES = 11


def _deepchem() -> Any:
    with contextlib.redirect_stdout(io.StringIO()):  # DeepChem prints optional-dependency notes
        import deepchem

    return deepchem


class _DeepChemBase(Featurizer):
    def library_versions(self) -> dict[str, str]:
        versions = super().library_versions()
        try:
            from importlib.metadata import version

            versions["deepchem"] = version("deepchem")
        except Exception:  # noqa: BLE001 - metadata missing: fall back to the import
            versions["deepchem"] = _deepchem().__version__
        return versions

    def _impl(self) -> Any:
        impl = self.__dict__.get("_lazy_impl")
        if impl is None:
            with contextlib.redirect_stdout(io.StringIO()):
                impl = self._build(_deepchem())
            self.__dict__["_lazy_impl"] = impl
        return impl

    def _build(self, dc: Any) -> Any:  # pragma: no cover - abstract helper
        raise NotImplementedError

    def _checked(self, values: Any) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        if arr.shape[0] != self.n_features:
            raise ValueError(f"{self.name}: DeepChem returned {arr.shape[0]} values, expected {self.n_features}")
        return arr


@register("dc_circular")
class DCCircularFeaturizer(_DeepChemBase):
    """DeepChem ``CircularFingerprint`` (ECFP4-like bits, radius 2, 2048)."""

    storage_dtype = np.dtype(np.uint8)

    def __init__(self, radius: int = 2, size: int = 2048) -> None:
        self.radius = radius
        self.size = size

    def params(self) -> dict[str, Any]:
        return {"radius": self.radius, "size": self.size, "counts": False, "chiral": False}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(str(i) for i in range(self.size))

    def _build(self, dc: Any) -> Any:
        return dc.feat.CircularFingerprint(radius=self.radius, size=self.size)

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        return self._checked(self._impl()._featurize(mol))


@register("dc_rdkit_descriptors")
class DCRDKitDescriptorsFeaturizer(_DeepChemBase):
    """DeepChem ``RDKitDescriptors`` (its defaults: fragments, BCUT2D, ``Ipc`` averaged).

    Non-finite values become NaN, as for ``rdkit2d``.
    """

    def params(self) -> dict[str, Any]:
        return {"use_fragment": True, "use_bcut2d": True, "ipc_avg": True, "is_normalized": False}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self._impl().reqd_properties)

    def _build(self, dc: Any) -> Any:
        return dc.feat.RDKitDescriptors(use_fragment=True, use_bcut2d=True, ipc_avg=True)

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        values = self._checked(self._impl()._featurize(mol))
        values[~np.isfinite(values)] = np.nan
        return values

    def compact(self, block: np.ndarray) -> np.ndarray:
        block = np.asarray(block, dtype=np.float64)
        limit = float(np.finfo(np.float32).max)
        with np.errstate(invalid="ignore"):
            block = np.where(np.abs(block) > limit, np.nan, block)
        return block.astype(np.float32)


@register("dc_molgraphconv")
class DCMolGraphConvFeaturizer(_DeepChemBase):
    """DeepChem ``MolGraphConvFeaturizer`` graph, pooled to a fixed 73-value vector (see module doc)."""

    def params(self) -> dict[str, Any]:
        return {"use_edges": True, "use_chirality": False, "use_partial_charge": False,
                "pooling": ["atom_mean", "atom_max", "bond_mean", "n_atoms", "n_bonds"]}

    @property
    def feature_names(self) -> tuple[str, ...]:
        return (
            tuple(f"atom_mean_{i}" for i in range(_NODE_FEATURES))
            + tuple(f"atom_max_{i}" for i in range(_NODE_FEATURES))
            + tuple(f"bond_mean_{i}" for i in range(_EDGE_FEATURES))
            + ("n_atoms", "n_bonds")
        )

    def _build(self, dc: Any) -> Any:
        return dc.feat.MolGraphConvFeaturizer(use_edges=True)

    def featurize_mol(self, mol: Chem.Mol) -> np.ndarray:
        graph = self._impl()._featurize(mol)
        nodes = np.asarray(graph.node_features, dtype=np.float64)
        if nodes.ndim != 2 or nodes.shape[0] == 0 or nodes.shape[1] != _NODE_FEATURES:
            raise ValueError(f"dc_molgraphconv: unexpected node feature shape {nodes.shape}")
        edges = np.asarray(graph.edge_features, dtype=np.float64) if graph.edge_features is not None else None
        if edges is not None and edges.size:
            bond_mean = edges.mean(axis=0)
            n_bonds = edges.shape[0] // 2  # DeepChem lists each bond in both directions
        else:
            bond_mean = np.zeros(_EDGE_FEATURES)
            n_bonds = 0
        return np.concatenate(
            [nodes.mean(axis=0), nodes.max(axis=0), bond_mean, [nodes.shape[0], n_bonds]]
        )
