"""Featurization: a registry of featurizers by name, chunked and parallel, with an on-disk cache.

>>> from pipelines.featurize import featurize_smiles
>>> fm = featurize_smiles(["CCO", "not a smiles"], spec="morgan_count+rdkit2d", n_jobs=1)
>>> fm.X.shape, fm.valid.tolist()
((2, 2265), [True, False])

Featurizers (``available_featurizers()``): ``morgan_count``, ``morgan_bits``, ``maccs``,
``rdkit2d``, ``rdkit2d_fast`` (112 of those descriptors, the costliest left out), MapLight's
``avalon_count`` and ``erg``, and the
DeepChem-backed ``dc_circular``, ``dc_rdkit_descriptors`` and
``dc_molgraphconv``. A spec joins names with ``+``; columns follow the spec order.

NaN handling: an invalid molecule is a NaN row with ``valid=False`` (callers drop or report
those rows, filtering labels together with features). Inside valid rows, descriptor featurizers
may hold NaN cells (a descriptor RDKit cannot compute, or a non-finite value); models impute
them (``admet.features.FeatureScaler`` fills NaN with the training median).
"""

from pipelines.featurize import deepchem_featurizers as _deepchem_featurizers  # noqa: F401 (registers)
from pipelines.featurize import fingerprints as _fingerprints  # noqa: F401 (registers)
from pipelines.featurize import maplight as _maplight  # noqa: F401 (registers)
from pipelines.featurize import rdkit2d as _rdkit2d  # noqa: F401 (registers)
from pipelines.featurize.api import DEFAULT_SPEC, featurize_smiles, iter_featurize
from pipelines.featurize.base import (
    FeatureMatrix,
    Featurizer,
    available_featurizers,
    get_featurizer,
    parse_spec,
    register,
)
from pipelines.featurize.cache import FeatureCache

__all__ = [
    "DEFAULT_SPEC",
    "FeatureCache",
    "FeatureMatrix",
    "Featurizer",
    "available_featurizers",
    "featurize_smiles",
    "get_featurizer",
    "iter_featurize",
    "parse_spec",
    "register",
]
