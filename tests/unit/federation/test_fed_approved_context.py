"""Federated and blended bundles carry the approved-drug context (``E_pct_approved``), node-local.

A tiny real federated run (the project's ServerApp / ClientApp over the in-process transport, real
RDKit Morgan counts, real torch training, 3 partners, 1 round) writes each partner's bundle on its
node; a blended bundle is written from one partner's bundle and its private LightGBM trees. Known
answers: each bundle's stored distribution is its own model's predictions of the approved drugs, and
a molecule predicted above every approved drug is at 100.
"""

from __future__ import annotations

import numpy as np
import pytest

from admet.approved import ApprovedReference, approved_features, standardized_approved_smiles
from admet.bundle import load_bundle
from admet.config import ModelConfig
from admet.features import FeatureSet
from federation import blend, blend_bundle
from federation import partners as partners_mod
from federation.config import FederatedConfig
from federation.run import load_all_partners, run_federated

FEATURIZER = "morgan_count"  # cheap to featurize the ~2,600 approved drugs (the mechanism is the same)
SMALL = dict(n_partners=3, rounds=1, local_epochs=1, hidden=(16,), endpoints=("HLM_CLint", "solubility"),
             max_rows=450, alpha=1.0, seed=0, engine="inprocess", baselines=False, quorum_grace=0.0,
             featurizer=FEATURIZER)
TREES = ModelConfig.build(model="lgbm", featurizer=FEATURIZER, lgbm_n_estimators=40, lgbm_min_child_samples=5,
                          ensemble=1, seed=0)
QUERY = ["CCOc1ccc2nc(S(N)(=O)=O)sc2c1", "CC(=O)Nc1ccc(O)cc1", "c1ccc2c(c1)cc1ccc3cccc4ccc2c1c34"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("fed_approved")
    cfg = FederatedConfig(out_dir=root / "on", **SMALL)
    partners_dir = partners_mod.prepare_partners(cfg)
    cfg = FederatedConfig(out_dir=root / "on", partners_dir=partners_dir, cache_dir=root / "cache", **SMALL)
    return root, partners_dir, cfg, run_federated(cfg)


N_CHECK = 150  # approved drugs predicted again through the public predict path (every one: ~10 s a bundle)


def _check_context(bundle) -> None:
    assert bundle.approved is not None and bundle.approved.n_drugs > 2000
    got = bundle.predict_smiles(QUERY)
    for name in bundle.task_names:
        pct = got[f"{name}_pct_approved"].to_numpy(float)
        assert np.isfinite(pct).all() and ((pct >= 0) & (pct <= 100)).all(), name
        assert len(bundle.approved.sorted_predictions[name]) == bundle.approved.n_drugs
    # the stored distribution is this bundle's own model's predictions of the approved drugs: each
    # drug's prediction now is one of the stored values (to float rounding between batches)
    again = bundle.predict_smiles(list(standardized_approved_smiles())[:N_CHECK])
    for name in bundle.task_names:
        stored = bundle.approved.sorted_predictions[name]
        values = again.loc[again["status"] == "ok", name].to_numpy(float)
        gap = np.abs(values[:, None] - stored[None, :]).min(axis=1)
        assert len(values) > 0.9 * N_CHECK and gap.max() < 1e-4, name


def test_federated_partner_bundles_have_finite_approved_percentiles(run):
    _, _, _, result = run
    assert len(result.partner_bundles) == 3
    for folder in result.partner_bundles.values():
        assert (folder / "approved.npz").is_file()
        _check_context(load_bundle(folder))


def test_a_molecule_predicted_above_every_approved_drug_is_at_100(run):
    _, _, _, result = run
    bundle = load_bundle(next(iter(result.partner_bundles.values())))
    name = bundle.task_names[0]
    ref = bundle.approved.sorted_predictions[name]
    smiles = list(standardized_approved_smiles())[:N_CHECK]
    pred = bundle.predict_smiles(smiles)[name].to_numpy(float)
    top = smiles[int(np.nanargmax(pred))]
    # the same model's reference without the drugs predicted at or above `top`: it is now above every one
    below = ref[ref < np.nanmax(pred) - 1e-4]
    assert 0 < len(below) < len(ref)
    bundle.approved = ApprovedReference({name: below}, len(below))
    out = bundle.predict_smiles([top, *QUERY])
    assert out.loc[0, f"{name}_pct_approved"] == 100.0
    pct = out[f"{name}_pct_approved"].to_numpy(float)
    expected = [100.0 * (below < v).mean() for v in out[name].to_numpy(float)]  # share strictly below
    np.testing.assert_allclose(pct, expected)


def test_blended_bundle_has_its_own_models_approved_percentiles(run, tmp_path):
    _, partners_dir, cfg, result = run
    data = next(d for d in load_all_partners(cfg, partners_dir) if d.partner in result.partner_bundles)
    fed_dir = result.partner_bundles[data.partner]
    trees = blend.fit_private_trees(data, TREES)
    nn = blend.federated_nn_predictions(fed_dir, data)
    tree_pred = {fold: trees.predict(data.X[data.rows(fold)]) for fold in ("valid", "test")}
    res = blend.blend_partner(data, nn, tree_pred, rule="endpoint")
    res["choice"] = {n: blend.PRIVATE_TREES for n in data.task_names}  # the trees predict every endpoint
    bundle = load_bundle(blend_bundle.write_blend_bundle(fed_dir, data, trees, res, tmp_path / "bb", TREES))
    _check_context(bundle)
    # the distribution is the trees' (the blend's model), not the federated net's
    X = approved_features(FeatureSet(spec=FEATURIZER))
    trees_on_drugs = trees.predict(X)
    fed = load_bundle(fed_dir)
    for j, name in enumerate(data.task_names):
        stored = bundle.approved.sorted_predictions[name]
        np.testing.assert_allclose(stored, np.sort(trees_on_drugs[:, j]), atol=1e-6)
        assert not np.allclose(stored, fed.approved.sorted_predictions[name])


def test_the_run_option_turns_it_off(run):
    root, partners_dir, cfg, _ = run
    off = FederatedConfig(out_dir=root / "off", partners_dir=partners_dir, cache_dir=cfg.cache_dir,
                          approved_context=False, **SMALL)
    result = run_federated(off)
    for folder in result.partner_bundles.values():
        bundle = load_bundle(folder)
        assert bundle.approved is None and not (folder / "approved.npz").exists()
        assert bundle.predict_smiles(QUERY)[f"{bundle.task_names[0]}_pct_approved"].isna().all()


def test_node_blend_cli_gives_the_blended_bundle_the_context(run, tmp_path):
    """``fedadmet node blend`` on a node whose federated bundle has the context: so has the blend."""
    from typer.testing import CliRunner

    from flows.cli import app

    _, partners_dir, cfg, result = run
    partner = sorted(result.partner_bundles)[0]
    out = tmp_path / "blended"
    res = CliRunner().invoke(app, ["node", "blend", "--data", str(partners_dir / partner),
                                   "--work", str(result.partner_bundles[partner].parent),
                                   "--catalog", str(partners_dir / "catalog.json"), "--ensemble", "1",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    bundle = load_bundle(out)
    assert bundle.config.model == "blend" and (out / "approved.npz").is_file()
    _check_context(bundle)
