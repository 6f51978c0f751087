"""Issue 10 §5: the federated blend as a bundle a partner can predict with (``federation.blend_bundle``,
``fedadmet node blend``). A real partner slice of the embedded catalog (three endpoints, real RDKit
features with their NaN descriptors), a federated net trained a few epochs on its rows with the
consortium-style (moments) scaling and written as the node's bundle exactly as a node writes it, the
private trees from ``federation.blend.fit_private_trees``. Known answers: the saved bundle's
predictions equal the blend's choice applied to the net's and the trees' predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from admet.bundle import load_bundle
from admet.config import ModelConfig
from admet.features import FeatureScaler
from admet.members import BlendMember, load_member
from admet.train import TrainConfig
from federation import blend, blend_bundle, task
from federation.bundles import write_bundle
from pipelines.node_settings import NodeDataSettings

FEATURIZER = "morgan_count+rdkit2d"
ENDPOINTS = ("solubility", "BBB_Martins", "Lipophilicity_AstraZeneca")
TREES = ModelConfig.build(model="lgbm", featurizer=FEATURIZER, lgbm_n_estimators=60, lgbm_min_child_samples=5,
                          ensemble=1, seed=0)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """A partner folder (raw long table + the operator's catalog.json), its node work folder with the
    prepared table and a federated bundle, and the loaded PartnerData."""
    from pipelines.catalog import load_embedded
    from pipelines.partner_data import consortium_catalog_for

    root = tmp_path_factory.mktemp("blend_node")
    table = load_embedded(list(ENDPOINTS))
    mols = table["smiles"].drop_duplicates().sample(n=420, random_state=0)
    table = table[table["smiles"].isin(set(mols))].reset_index(drop=True)
    folder = root / "partner_07"
    folder.mkdir()
    table.to_csv(folder / task.DATA_FILE, index=False)
    consortium_catalog_for(table).write(root / "catalog.json")
    work = root / "work"
    settings = NodeDataSettings(catalog_path=root / "catalog.json")
    data = task.load_partner(folder, "partner_07", FEATURIZER, work / "feature_cache", work, settings=settings)
    # the federated net as a node leaves it: consortium scaling from (here one partner's) moments,
    # private heads and own target scaling, trained on the train rows, saved by write_bundle
    scaling = task.consortium_scaling(data.X.shape[1], data.tasks, [(data.task_names, task.local_moments(data))])
    scaling = task.partner_targets(scaling, data)
    model = task.build_model(scaling.n_features, scaling.tasks, (32,), 0.1, seed=0)
    task.train_partner(model, data, scaling, TrainConfig(epochs=6, lr=1e-3, batch_size=64, patience=0, seed=0), 6)
    write_bundle(model, scaling, work / "bundle", FEATURIZER, data_tasks=data.task_names, metrics={},
                 info={"partner": data.partner},
                 domain_smiles=([str(s) for s in data.smiles[data.rows("train")]],
                                [str(s) for s in data.smiles[data.rows("valid")]]))
    return {"root": root, "folder": folder, "work": work, "data": data}


@pytest.fixture(scope="module")
def trees(node):
    return blend.fit_private_trees(node["data"], TREES)


def _result(data, nn, tree_pred, choice):
    res = blend.blend_partner(data, nn, tree_pred, rule="endpoint")
    res["choice"] = dict(choice)  # a known choice covering every option
    return res


def test_saved_bundle_predicts_the_chosen_option_per_endpoint(node, trees, tmp_path):
    data = node["data"]
    nn = blend.federated_nn_predictions(node["work"] / "bundle", data)
    test = data.rows("test")
    tree_pred = {fold: trees.predict(data.X[data.rows(fold)]) for fold in ("valid", "test")}
    choice = dict(zip(ENDPOINTS, (blend.FED_NN, blend.PRIVATE_TREES, blend.EQUAL_BLEND)))
    choice = {n: choice[n] for n in data.task_names}
    path = blend_bundle.write_blend_bundle(node["work"] / "bundle", data, trees, _result(data, nn, tree_pred, choice),
                                           tmp_path / "bb", TREES)
    bundle = load_bundle(path)
    assert bundle.task_names == data.task_names and bundle.config.model == "blend"
    expected = blend.apply(blend.candidates(nn["test"], tree_pred["test"]),
                           {n: {"choice": c} for n, c in choice.items()}, data.tasks)
    got = bundle.predict_features(data.X[test], [str(s) for s in data.smiles[test]])
    for j, name in enumerate(data.task_names):
        np.testing.assert_array_equal(got[name].to_numpy(float), expected[:, j])
        if choice[name] == blend.FED_NN:
            np.testing.assert_array_equal(got[name].to_numpy(float), nn["test"][:, j])
        elif choice[name] == blend.PRIVATE_TREES:
            np.testing.assert_array_equal(got[name].to_numpy(float), tree_pred["test"][:, j])
        else:
            np.testing.assert_array_equal(got[name].to_numpy(float), 0.5 * (nn["test"][:, j] + tree_pred["test"][:, j]))
    # the three options really differ on these rows (the test could not pass by accident)
    for j in range(len(data.tasks)):
        assert not np.allclose(nn["test"][:, j], tree_pred["test"][:, j])
    # what it is made of, in bundle.json and the card
    meta = json.loads((path / "bundle.json").read_text())
    assert meta["info"]["kind"] == "federated_blend" and meta["info"]["trees_left_node"] is False
    assert {n: e["net_weight"] for n, e in meta["info"]["blend"].items()} == {
        n: {blend.FED_NN: 1.0, blend.PRIVATE_TREES: 0.0, blend.EQUAL_BLEND: 0.5}[c] for n, c in choice.items()}
    card = (path / "model_card.md").read_text()
    assert "## Composition" in card and "never left the node" in card and "equal-weight mean of the network" not in card


def test_each_part_keeps_its_own_scaling(node, trees, tmp_path):
    """One shared scaling would change the trees: the partner scaler and the consortium scaler clip and
    impute differently, so the same booster on the net's scaling predicts other values."""
    data = node["data"]
    fed = load_bundle(node["work"] / "bundle")
    X = data.X[data.rows("test")]
    own = trees.members[0].predict(trees.scaler.transform(X))
    shared = trees.members[0].predict(fed.features.scaler.transform(X))
    assert not np.allclose(own, shared, equal_nan=True)
    ident = FeatureScaler.identity(X.shape[1])
    Xn = X.copy()
    Xn[:3, :40] = np.nan  # descriptors RDKit could not compute
    np.testing.assert_array_equal(ident.transform(Xn), Xn)  # NaN kept: each part imputes its own way
    net = blend_bundle.own_endpoint_net(fed.ensemble.members[0], data.task_names)
    member = BlendMember(net, trees.members[0], [0.0] * len(data.tasks), scalers=(fed.features.scaler, trees.scaler))
    np.testing.assert_array_equal(member.predict(ident.transform(Xn)), trees.predict(Xn))
    path = tmp_path / "ident.npz"
    ident.save(path)
    back = FeatureScaler.load(path)
    assert back.impute is False and back.clip == float("inf")


def test_weights_one_and_zero_are_exactly_the_net_and_the_trees(node, trees, tmp_path):
    data = node["data"]
    fed = load_bundle(node["work"] / "bundle")
    net = blend_bundle.own_endpoint_net(fed.ensemble.members[0], data.task_names)
    X = data.X[data.rows("valid")]
    a = net.predict(fed.features.scaler.transform(X))
    b = trees.members[0].predict(trees.scaler.transform(X))
    assert np.isfinite(b).all()
    T = len(data.tasks)
    for w, want in ((1.0, a), (0.0, b)):
        member = BlendMember(net, trees.members[0], [w] * T, scalers=(fed.features.scaler, trees.scaler))
        np.testing.assert_array_equal(member.predict(X), want)
        member.save(tmp_path / f"m{w}")
        np.testing.assert_array_equal(load_member(tmp_path / f"m{w}").predict(X), want)
    # a booster-less endpoint (NaN trees) falls back to the net even at weight 0
    nan_b = b.copy()
    nan_b[:, 0] = np.nan
    member = BlendMember(net, trees.members[0], [0.0] * T)
    np.testing.assert_array_equal(member.combine(a, nan_b)[:, 0], a[:, 0])
    # the own-endpoint net is the federated net's columns, exactly
    full = fed.ensemble.members[0].predict(fed.features.scaler.transform(X))
    cols = [fed.task_names.index(n) for n in data.task_names]
    np.testing.assert_array_equal(a, full[:, cols])
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        BlendMember(net, trees.members[0], [1.5] * T)


def test_default_blend_member_file_is_unchanged(node, trees, tmp_path):
    """The default family's equal blend saves as before (weights [0.5, 0.5], no per-endpoint weights)."""
    fed = load_bundle(node["work"] / "bundle")
    net = blend_bundle.own_endpoint_net(fed.ensemble.members[0], node["data"].task_names)
    BlendMember(net, trees.members[0]).save(tmp_path / "eq")
    meta = json.loads((tmp_path / "eq" / "member.json").read_text())
    assert meta == {"family": "blend", "parts": ["mtnn", "lgbm"], "weights": [0.5, 0.5]}


def test_node_blend_cli_end_to_end_and_predict_smiles(node, tmp_path):
    from flows.cli import app

    out = tmp_path / "blended"
    args = ["node", "blend", "--data", str(node["folder"]), "--work", str(node["work"]),
            "--catalog", str(node["root"] / "catalog.json"), "--out", str(out), "--ensemble", "1", "--private-net"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "nothing was sent" in res.output
    summary = json.loads((out / blend_bundle.SUMMARY_FILE).read_text())
    data = node["data"]
    assert set(summary["endpoints"]) == set(data.task_names) and summary["sent_anywhere"] is False
    for e in summary["endpoints"].values():
        if e["valid"]:  # chosen on valid: the best valid score
            assert e["chosen_by"] == "valid" and e["valid"][e["choice"]] == max(e["valid"].values())
    bundle = load_bundle(out)
    assert [m.net_weight.tolist() for m in bundle.ensemble.members] == [
        [summary["endpoints"][n]["net_weight"] for n in bundle.task_names]]
    assert all(blend.ALL_THREE in e["valid"] for e in summary["endpoints"].values() if e["valid"])  # --private-net
    for n in bundle.task_names:  # the node's choice's weights (the private-net options included)
        option = summary["endpoints"][n]["choice"]
        w, v = blend.PRIVATE_NET_WEIGHTS.get(option, (blend_bundle.NET_WEIGHT.get(option), 0.0))
        assert (summary["endpoints"][n]["net_weight"], summary["endpoints"][n]["private_net_weight"]) == (w, v)
    smiles = [str(s) for s in data.smiles[data.rows("test")][:8]]
    pred = bundle.predict_smiles(smiles + ["not a smiles", "CC[Na]"])
    assert list(pred["status"][:8]) == ["ok"] * 8 and pred.loc[8, "status"] == "rejected"
    for name in bundle.task_names:
        assert np.isfinite(pred[name][:8].to_numpy(float)).all()
    # the same molecules through the feature path give the same values
    rows = data.rows("test")[:8]
    direct = bundle.predict_features(data.X[rows], smiles)
    for name in bundle.task_names:
        np.testing.assert_allclose(pred[name][:8].to_numpy(float), direct[name].to_numpy(float), rtol=1e-6)
    # rerunning into the same folder replaces the bundle; the federated bundle is untouched
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert load_bundle(node["work"] / "bundle").ensemble.family == "mtnn"


def test_node_blend_default_rule_is_the_equal_blend_on_every_endpoint(node, tmp_path):
    """Without --rule (and without --private-net) the node's bundle is the equal blend everywhere: the
    summary says no choice was made, every member weighs the network 0.5, and the card says so."""
    from flows.cli import app

    out = tmp_path / "equal"
    res = CliRunner().invoke(app, ["node", "blend", "--data", str(node["folder"]), "--work", str(node["work"]),
                                   "--catalog", str(node["root"] / "catalog.json"), "--out", str(out),
                                   "--ensemble", "1"])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / blend_bundle.SUMMARY_FILE).read_text())
    assert {e["choice"] for e in summary["endpoints"].values()} == {blend.EQUAL_BLEND}
    assert {e["chosen_by"] for e in summary["endpoints"].values()} == {"rule"}
    assert any(e["valid"] for e in summary["endpoints"].values())  # the valid scores are still reported
    bundle = load_bundle(out)
    assert [m.net_weight.tolist() for m in bundle.ensemble.members] == [[0.5] * len(bundle.task_names)]
    assert "no choice was made" in (out / "model_card.md").read_text()
    assert summary["test_metric_blend"] == summary["test_metric_by_option"][blend.EQUAL_BLEND]
    bad = CliRunner().invoke(app, ["node", "blend", "--data", str(node["folder"]), "--work", str(node["work"]),
                                   "--catalog", str(node["root"] / "catalog.json"), "--out", str(tmp_path / "x"),
                                   "--rule", "equal", "--private-net"])
    assert bad.exit_code == 2 and "--rule endpoint" in bad.output


def _error_lines(res) -> list[str]:
    return [line for line in (res.output or "").splitlines() if line.strip()]


@pytest.mark.parametrize("case", ["no_bundle", "other_fold_secret", "out_not_a_bundle"])
def test_node_blend_bad_input_is_one_error_line(node, tmp_path, case):
    from flows.cli import app

    work, extra = node["work"], []
    if case == "no_bundle":
        work = tmp_path / "empty_work"
        work.mkdir()
    elif case == "other_fold_secret":
        secret = tmp_path / "secret.txt"
        secret.write_text("another consortium's secret")
        extra = ["--fold-secret", str(secret)]
    else:
        busy = tmp_path / "busy"
        busy.mkdir()
        pd.DataFrame({"a": [1]}).to_csv(busy / "notes.csv", index=False)
        extra = ["--out", str(busy)]
    res = CliRunner().invoke(app, ["node", "blend", "--data", str(node["folder"]), "--work", str(work),
                                   "--catalog", str(node["root"] / "catalog.json"), *extra])
    assert res.exit_code == 2, res.output
    lines = _error_lines(res)
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output


NETS = ModelConfig.build(model="mtnn", featurizer=FEATURIZER, hidden=(32,), epochs=8, patience=3, ensemble=2, seed=0)


def test_private_net_options_are_packaged_exactly(node, trees, tmp_path):
    """The options with the partner's private net (``blend.PRIVATE_NET_WEIGHTS``): the saved bundle's
    prediction per endpoint equals the option's blend of the federated net, the private net and the trees
    (to float rounding), the private net alone bit for bit; the private net never saw the valid rows."""
    data = node["data"]
    net = blend.fit_private_net(data, NETS)
    assert len(net.members) == 2
    inner = blend.inner_split(data, blend.INNER_VALID_FRACTION, NETS.seed)
    assert inner.any() and (~inner).any()
    nn = blend.federated_nn_predictions(node["work"] / "bundle", data)
    tree_pred = {fold: trees.predict(data.X[data.rows(fold)]) for fold in ("valid", "test")}
    net_pred = net.fold_predictions(data)
    test = data.rows("test")
    for options in ((blend.PRIVATE_NET, blend.ALL_THREE, blend.FED_PRIVATE),
                    (blend.PRIVATE_BLEND, blend.FED_NN, blend.PRIVATE_NET)):
        choice = {n: o for n, o in zip(data.task_names, options)}
        res = blend.blend_partner(data, nn, tree_pred, net=net_pred, rule="endpoint")
        assert set(blend.PRIVATE_NET_WEIGHTS) <= set(res["test_by_option"])
        res["choice"] = dict(choice)
        path = blend_bundle.write_blend_bundle(node["work"] / "bundle", data, trees, res, tmp_path / options[0],
                                               TREES, private_net=net)
        got = load_bundle(path).predict_features(data.X[test], [str(s) for s in data.smiles[test]])
        expected = blend.apply(blend.candidates(nn["test"], tree_pred["test"],
                                                blend.private_net_options(nn["test"], tree_pred["test"], net_pred["test"])),
                               {n: {"choice": c} for n, c in choice.items()}, data.tasks)
        for j, name in enumerate(data.task_names):
            np.testing.assert_allclose(got[name].to_numpy(float), expected[:, j], rtol=1e-6, atol=1e-9)
            if choice[name] == blend.PRIVATE_NET:
                np.testing.assert_array_equal(got[name].to_numpy(float), net_pred["test"][:, j])
            if choice[name] == blend.ALL_THREE:
                three = (nn["test"][:, j] + net_pred["test"][:, j] + tree_pred["test"][:, j]) / 3.0
                np.testing.assert_allclose(got[name].to_numpy(float), three, rtol=1e-6)
        meta = json.loads((path / "bundle.json").read_text())
        assert {n: e["private_net_weight"] for n, e in meta["info"]["blend"].items()} == {
            n: blend.PRIVATE_NET_WEIGHTS.get(c, (0.0, 0.0))[1] for n, c in choice.items()}
        assert "private net" in (path / "model_card.md").read_text()
    # the private net is a model of its own (its predictions differ from the federated net's)
    assert not np.allclose(net_pred["test"], nn["test"])
    # without the private net the blended bundle refuses an option that needs it
    with pytest.raises(ValueError, match="private net"):
        blend_bundle.write_blend_bundle(node["work"] / "bundle", data, trees, res, tmp_path / "none", TREES)


def test_a_second_network_combines_by_its_weights_and_round_trips(node, trees, tmp_path):
    """``BlendMember`` with the private net as a second network: weights (1, 0) / (0, 1) / (0, 0) are the
    federated net / the private net / the trees bit for bit, saved and loaded; where the trees are NaN the
    nets share their weight; weights summing above 1 are refused."""
    data = node["data"]
    fed = load_bundle(node["work"] / "bundle")
    net = blend_bundle.own_endpoint_net(fed.ensemble.members[0], data.task_names)
    private = blend.fit_private_net(data, NETS)
    X = data.X[data.rows("valid")]
    a = net.predict(fed.features.scaler.transform(X))
    b = trees.members[0].predict(trees.scaler.transform(X))
    c = private.members[0].predict(private.scaler.transform(X))
    T = len(data.tasks)
    for (w, v), want in (((1.0, 0.0), a), ((0.0, 1.0), c), ((0.0, 0.0), b)):
        member = BlendMember(net, trees.members[0], [w] * T, scalers=(fed.features.scaler, trees.scaler),
                             net2=private.members[0], net2_weight=[v] * T, net2_scaler=private.scaler)
        np.testing.assert_array_equal(member.predict(X), want)
        member.save(tmp_path / f"m{w}{v}")
        assert (tmp_path / f"m{w}{v}" / BlendMember.NET2_DIR / "member.json").is_file()
        np.testing.assert_array_equal(load_member(tmp_path / f"m{w}{v}").predict(X), want)
    member = BlendMember(net, trees.members[0], [0.25] * T, net2=private.members[0], net2_weight=[0.25] * T)
    nan_b = b.copy()
    nan_b[:, 0] = np.nan
    mixed = member.combine3(a, nan_b, c)
    np.testing.assert_allclose(mixed[:, 0], 0.5 * (a[:, 0] + c[:, 0]))
    np.testing.assert_allclose(mixed[:, 1], 0.25 * a[:, 1] + 0.25 * c[:, 1] + 0.5 * b[:, 1])
    with pytest.raises(ValueError, match="at most 1"):
        BlendMember(net, trees.members[0], [0.7] * T, net2=private.members[0], net2_weight=[0.5] * T)
    with pytest.raises(ValueError, match="needs its weights"):
        BlendMember(net, trees.members[0], [0.5] * T, net2=private.members[0])
