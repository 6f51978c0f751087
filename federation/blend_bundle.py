"""A partner's federated blend as a model bundle it can predict with, on its own node.

``federation.blend`` picks, per endpoint of a partner, between its federated net (global trunk + its
private heads, the node's ``bundle/``), its private trees (``blend.PrivateTrees``: LightGBM fitted on the
partner's own rows only) and their equal blend (under the default rule, ``blend_rule = "equal"``, the equal
blend on every endpoint; under ``endpoint``, the option best on the partner's valid rows). This module packages that choice as one
``admet.bundle.ModelBundle`` (``blend_bundle/`` in the node's work folder) that ``fedadmet admet
predict -m`` and ``fedadmet screen -m`` load like any bundle:

- one ``admet.members.BlendMember`` per private-tree member, each holding the federated net restricted to
  the partner's own endpoints and one LightGBM member, combined per endpoint with the chosen option's
  weight on the net (``NET_WEIGHT``: federated NN 1, private trees 0, equal blend 0.5; exactly the net or
  the trees at 1 / 0). With more than one tree member the bundle's prediction is the members' mean,
  which equals the blend's choice applied to the net and the mean of the trees up to float rounding;
- each part scales its own inputs (``BlendMember`` scalers): the net the consortium's feature scaling
  it was federated on, the trees the partner's own scaling they were fitted on (the two clip at +/-6 of
  different scales and impute NaN with different medians, so one shared scaling would change the trees'
  predictions); the bundle's own scaler is the identity (``FeatureScaler.identity``);
- the applicability domain of the partner's federated bundle (its own training structures);
- in ``bundle.json`` ``info``: what it is made of, the per-endpoint choice with its valid scores, and
  that the trees never left the node; the same in the model card's Composition section.

With ``fedadmet federate --federated-trees`` the blend has a fourth option, the federated trees
(``federation.trees``: one bagged xgboost model per endpoint, grown by the partners that measure it).
Every node already holds the final model of each endpoint it took part in (``trees.model_path``); the
bundle carries the models of the endpoints whose choice they are (``admet.members.XGBEndpointModels``,
on raw features) in every member, and there the member predicts exactly that model (the net where the node has none, as
the blend's option does). The default blend's files are unchanged.

The blended bundle covers the partner's own endpoints only (those it has labels for, where the choice
is made); for the consortium's other endpoints the federated ``bundle/`` still predicts.

Two callers: ``fedadmet node blend`` on the deployment path (:func:`blend_node`: fits the private trees
with ``blend.fit_private_trees``, applies the rule (``--rule``), writes the bundle and a node-local
summary), and the simulation runner (``federation.run``), which packages the private trees and the
choice it already made (:func:`write_blend_bundle`). Neither sends anything anywhere.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np

from admet.bundle import ModelBundle, json_default, load_bundle
from admet.config import ModelConfig
from admet.ensemble import Ensemble
from admet.features import FeatureScaler, FeatureSet
from admet.members import BlendMember, MTNNMember, XGBEndpointModels
from admet.model import MultitaskNet, head_key
from admet.train import TargetScaler
from federation import blend, scoring, task
from pipelines.errors import InputError

log = logging.getLogger(__name__)

BUNDLE_DIR = "blend_bundle"
SUMMARY_FILE = "blend_summary.json"
KIND = "federated_blend"
#: The network's weight per chosen option (the trees get ``1 - w``).
NET_WEIGHT = {blend.FED_NN: 1.0, blend.PRIVATE_TREES: 0.0, blend.EQUAL_BLEND: 0.5}


def net_weights(choice: dict[str, str], names: list[str], fed_trees: bool = False) -> list[float]:
    """The net's weight per endpoint of ``names`` from ``choice`` (endpoint -> option). With the federated
    trees in the bundle (``fed_trees``) their endpoints get 1: the net is what the member falls back to
    where the node has no federated model (``blend.candidates`` does the same). The private-net options
    give the federated net its ``blend.PRIVATE_NET_WEIGHTS`` weight (:func:`private_net_weights` the other)."""
    out = []
    packaged = {**NET_WEIGHT, **({blend.FED_TREES: 1.0} if fed_trees else {}),
                **{o: w for o, (w, _) in blend.PRIVATE_NET_WEIGHTS.items()}}
    for name in names:
        option = choice.get(name)
        if option not in packaged:
            raise ValueError(f"endpoint {name}: option {option!r} cannot be packaged in a blended bundle "
                             f"(packaged: {sorted(packaged)})")
        out.append(packaged[option])
    return out


def private_net_weights(choice: dict[str, str], names: list[str]) -> list[float]:
    """The private net's weight per endpoint (0 for the options without it)."""
    return [blend.PRIVATE_NET_WEIGHTS.get(choice.get(n), (0.0, 0.0))[1] for n in names]


def federated_trees_part(node_dir: Path, token: str, endpoints: dict[str, dict], names: list[str]) -> XGBEndpointModels:
    """The federated trees this node holds (``federation.trees``: the final model per endpoint, kept in
    its work folder under the run's ``token``), in the order of ``names``; ``endpoints``: the trees run's
    per-endpoint info (its ``task_type`` gives an empty model's base score). No model: NaN (the net)."""
    from federation.trees import BASE_SCORE, node_models

    models = node_models(Path(node_dir), token, names)
    raw = [models.get(n) for n in names]
    constants = [BASE_SCORE[endpoints[n]["task_type"]] if n in endpoints else None for n in names]
    return XGBEndpointModels(names, raw, constants)


def own_endpoint_net(member: MTNNMember, names: list[str]) -> MTNNMember:
    """``member``'s network with only the heads of ``names`` (same trunk and head weights: each
    column's output is exactly the full network's column)."""
    model = member.model
    missing = [n for n in names if n not in model.task_names]
    if missing:
        raise InputError(f"the federated model has no head for endpoint(s) {missing}")
    cols = [model.task_names.index(n) for n in names]
    sub = MultitaskNet(model.n_features, [model.tasks[c] for c in cols], hidden=model.hidden,
                       dropout=model.dropout, input_dropout=model.input_dropout)
    sub.trunk.load_state_dict(model.trunk.state_dict())
    for name in names:
        sub.heads[head_key(name)].load_state_dict(model.heads[head_key(name)].state_dict())
    sub.eval()
    ts = member.target_scaler
    return MTNNMember(sub, TargetScaler(ts.mean[cols], ts.std[cols], ts.is_classification[cols]), member.best_epoch)


def _option_weight(option: str) -> str:
    if option == blend.FED_TREES:
        return "federated trees"
    if option in blend.PRIVATE_NET_WEIGHTS:
        w, v = blend.PRIVATE_NET_WEIGHTS[option]
        return f"{w:.3g} (private net {v:.3g})"
    return f"{NET_WEIGHT[option]:g}"


def _composition(partner: str, names: list[str], choice: dict[str, str], by: dict[str, str],
                 n_trees: int, fed_info: dict, fed_trees: bool = False, private_net: int = 0) -> list[str]:
    lines = [
        f"A federated blend of partner `{partner}`, built on its own node (nothing of it was sent anywhere):",
        "- federated network: the consortium's global trunk with this partner's own heads (the federated "
        f"run's node bundle{', heads ' + str(fed_info.get('heads')) if fed_info.get('heads') else ''}), "
        "on the consortium's feature scaling;",
        f"- private trees: {n_trees} LightGBM member(s), one booster per endpoint, trained on this partner's "
        "own rows only (early-stopped on an inner split of its train rows), on its own feature scaling; "
        "the trees never left the node;",
        ("- every endpoint: the equal blend, weight 0.5 on the network and 0.5 on the trees (the blend's "
         "default rule; no choice was made on the valid rows)." if by and all(v == "rule" for v in by.values())
         else "- per endpoint, the option with the best primary metric on the partner's valid rows (the fallback "
              "rule where they cannot score it): weight on the network 1 (federated NN), 0 (private trees) or "
              "0.5 (equal blend)."),
    ]
    if private_net:
        lines.insert(3, f"- private net: {private_net} multitask net(s) of the default recipe trained on this partner's "
                        "own rows only (early-stopped on the same inner split as the trees), on its own feature "
                        "scaling; the options with it weigh the federated net, the private net and the trees "
                        "(the column below gives both nets' weights); it never left the node;")
    if fed_trees:
        lines.insert(3, "- federated trees: per endpoint the bagged xgboost model the partners that measure it grew "
                        "with Flower's FedXgbBagging (this node received it; its own trees went to the server in the "
                        "clear, docs/PRIVACY.md); where chosen, the member predicts exactly that model (the network "
                        "where this node has none);")
    lines += ["", "| endpoint | option | weight on network | chosen by |", "|---|---|---|---|"]
    lines += [f"| {n} | {choice[n]} | {_option_weight(choice[n])} | {by.get(n, '-')} |" for n in names]
    return lines


def build_blend_bundle(fed: ModelBundle, trees: blend.PrivateTrees, result: dict, partner: str,
                       mcfg: ModelConfig | None = None, fed_trees: XGBEndpointModels | None = None,
                       private_net: blend.PrivateNet | None = None) -> ModelBundle:
    """The blended bundle from the partner's federated bundle ``fed``, its private ``trees`` and
    ``result`` (a ``blend.blend_partner`` result: ``choice``, ``chosen_by``, ``valid_scores``, and the
    test scores ``endpoints`` / ``metric`` as metrics); ``fed_trees``: the federated trees this node holds
    (:func:`federated_trees_part`), needed only where the choice names them; ``private_net``: the partner's
    private net (``blend.PrivateNet``), needed only where the choice names an option with it. Member i
    pairs tree member ``i % n_trees`` with private-net member ``i % n_nets`` over lcm(n_trees, n_nets)
    members, so the bundle's mean is the blend's choice applied to the mean of the nets and of the trees
    (up to float rounding)."""
    names = list(trees.task_names)
    if len(fed.ensemble.members) != 1 or not isinstance(fed.ensemble.members[0], MTNNMember):
        raise InputError("the federated bundle must hold one federated network (an mtnn member)")
    missing = [n for n in names if n not in fed.task_names]
    if missing:
        raise InputError(f"the federated bundle does not predict the partner's endpoint(s) {missing}")
    choice = {n: result["choice"][n] for n in names}
    uses_fed_trees = any(c == blend.FED_TREES for c in choice.values())
    if uses_fed_trees and (fed_trees is None or fed_trees.task_names != names):
        raise ValueError("the choice names the federated trees: pass this node's models (federated_trees_part) "
                         "for the partner's endpoints")
    weights = net_weights(choice, names, fed_trees=uses_fed_trees)
    private_w = private_net_weights(choice, names)
    uses_private_net = any(v > 0 for v in private_w)
    if uses_private_net and (private_net is None or list(private_net.task_names) != names):
        raise ValueError("the choice names the private net: pass the partner's blend.PrivateNet for its endpoints")
    net = own_endpoint_net(fed.ensemble.members[0], names)
    net_scaler = fed.features.scaler
    xgb_kw = {}
    if uses_fed_trees:  # only the chosen endpoints' models go into the bundle (the others are not used)
        used = [choice[n] == blend.FED_TREES for n in names]
        part = XGBEndpointModels(names, [m if u else None for m, u in zip(fed_trees.models, used, strict=True)],
                                 [c if u else None for c, u in zip(fed_trees.constants, used, strict=True)])
        xgb_kw = {"xgb": part, "xgb_endpoints": used}
    n_trees = len(trees.members)
    n_members = math.lcm(n_trees, len(private_net.members)) if uses_private_net else n_trees
    net2_kw = lambda i: ({"net2": private_net.members[i % len(private_net.members)], "net2_weight": private_w,  # noqa: E731
                          "net2_scaler": private_net.scaler} if uses_private_net else {})
    members = [BlendMember(net, trees.members[i % n_trees], weights, scalers=(net_scaler, trees.scaler), **xgb_kw,
                           **net2_kw(i)) for i in range(n_members)]
    tasks = [fed.tasks[fed.task_names.index(n)] for n in names]
    features = FeatureSet(spec=fed.features.spec, clip=fed.features.clip)
    features.scaler = FeatureScaler.identity(len(net_scaler.center))
    features.featurizer_config = fed.featurizer_config
    base = (mcfg or ModelConfig.cli_default()).to_json_dict()
    base.update(model="blend", featurizer=fed.features.spec, feature_clip=fed.features.clip,
                hidden=list(net.model.hidden), dropout=net.model.dropout, ensemble=len(members))
    cfg = ModelConfig.build(**base)
    by = dict(result.get("chosen_by", {}))
    fed_info = dict(fed.info or {})
    info = {
        "trained_by": "federation", "kind": KIND, "partner": partner, "partner_endpoints": names,
        "made_of": {"federated_net": "global trunk + this partner's heads (the node's federated bundle)",
                    "private_trees": f"{n_trees} LightGBM member(s) trained on this partner's rows only; "
                                     "they never left the node",
                    "combination": "per endpoint w * net + (1 - w) * trees, w from the chosen option"},
        "trees_left_node": False,
        "blend": {n: {"choice": choice[n], "net_weight": None if choice[n] == blend.FED_TREES else w,
                      **({"private_net_weight": v} if uses_private_net else {}),
                      "chosen_by": by.get(n), "valid_scores": result.get("valid_scores", {}).get(n, {})}
                  for n, w, v in zip(names, weights, private_w)},
        "federated_run": {k: fed_info[k] for k in ("run_token", "rounds", "heads", "scaling") if k in fed_info},
        "feature_scaling": "each part on its own scaling: the network on the consortium's (the federated "
                           "run's), the trees on the partner's train rows' robust scaling (median/IQR, "
                           f"NaN -> median, clipped to +/-{trees.scaler.clip:g}); the bundle passes raw features",
        "network_training": "trained in the federated run (its strategy aggregates the trunk across partners; "
                            "the heads are this partner's)",
        "composition": _composition(partner, names, choice, by, n_trees, fed_info, uses_fed_trees,
                                    len(private_net.members) if uses_private_net else 0),
    }
    if uses_private_net:
        info["made_of"]["private_net"] = (f"{len(private_net.members)} multitask net(s) of the default recipe trained "
                                          "on this partner's rows only (early-stopped on an inner split of its "
                                          "train rows); they never left the node")
        info["made_of"]["combination"] = ("per endpoint w * federated net + v * private net + (1 - w - v) * trees, "
                                          "(w, v) from the chosen option")
    if uses_fed_trees:
        info["made_of"]["federated_trees"] = ("per endpoint the consortium's bagged xgboost model (Flower's "
                                              "FedXgbBagging); this partner's own trees in it went to the server "
                                              "in the clear")
        info["made_of"]["combination"] += "; where the federated trees were chosen, exactly their prediction"
        info["federated_trees_endpoints"] = [n for n in names if choice[n] == blend.FED_TREES]
        info["federated_trees_sent_in_clear"] = True  # trees_left_node above is about the private trees
    primary = {t.name: scoring.primary_metric_name(t) for t in tasks}
    metrics = {"test": {n: {primary[n]: v} for n, v in result.get("endpoints", {}).items() if n in primary},
               "test_metric": result.get("metric"), "test_by_option": result.get("test_by_option", {})}
    return ModelBundle(tasks=tasks, config=cfg, features=features, ensemble=Ensemble(members, tasks),
                       conformal={}, calibrators={}, domain=fed.domain, approved=None, metrics=metrics,
                       data_hash=fed.data_hash, featurizer_config=fed.featurizer_config, info=info)


def blend_summary(data: task.PartnerData, result: dict) -> dict:
    """The node-local summary: per endpoint the choice, how it was made, each option's valid score,
    the labelled valid / test rows, and the test score of each option and of the blend."""
    n_valid = (~np.isnan(data.Y[data.rows("valid")])).sum(0)
    n_test = (~np.isnan(data.Y[data.rows("test")])).sum(0)
    per = {}
    for j, name in enumerate(data.task_names):
        option = result["choice"][name]
        per[name] = {"choice": option, "chosen_by": result["chosen_by"][name],
                     "net_weight": NET_WEIGHT.get(option, blend.PRIVATE_NET_WEIGHTS.get(option, (None, None))[0]),
                     "private_net_weight": blend.PRIVATE_NET_WEIGHTS.get(option, (None, 0.0))[1],
                     "federated_trees": result["choice"][name] == blend.FED_TREES,
                     "valid": result["valid_scores"].get(name, {}), "n_valid": int(n_valid[j]),
                     "n_test": int(n_test[j]), "test_blend": result["endpoints"].get(name),
                     "test": {o: r["endpoints"].get(name) for o, r in result.get("test_by_option", {}).items()}}
    return {"partner": data.partner, "scores": "primary metric per endpoint (Spearman / AUROC), "
            f"scored where at least {scoring.MIN_TEST} labels (both classes)",
            "test_metric_blend": result["metric"],
            "test_metric_by_option": {o: r["metric"] for o, r in result.get("test_by_option", {}).items()},
            "endpoints": per, "sent_anywhere": False}


def _clear_out(out: Path) -> None:
    """An existing ``out`` may only be empty or a previous blended bundle (which is replaced)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder")
    if not any(out.iterdir()):
        return
    meta = out / "bundle.json"
    try:
        kind = json.loads(meta.read_text()).get("info", {}).get("kind") if meta.is_file() else None
    except (OSError, json.JSONDecodeError):
        kind = None
    if kind != KIND:
        raise InputError(f"--out {out} exists and is not a blended bundle; choose an empty or new folder")
    shutil.rmtree(out)


def write_blend_bundle(fed_bundle_dir: Path, data: task.PartnerData, trees: blend.PrivateTrees, result: dict,
                       out: Path, mcfg: ModelConfig | None = None, fed_trees: XGBEndpointModels | None = None,
                       private_net: blend.PrivateNet | None = None) -> Path:
    """Save the blended bundle to ``out`` (a previous one there is replaced), with ``SUMMARY_FILE`` in it."""
    fed = load_bundle(fed_bundle_dir)
    bundle = build_blend_bundle(fed, trees, result, data.partner, mcfg, fed_trees, private_net)
    out = Path(out)
    _clear_out(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).write_text(json.dumps(blend_summary(data, result), indent=1, default=json_default))
    if fed.approved is not None:  # the federated bundle has the approved-drug context: the blend's own too
        from federation.bundles import approved_reference

        bundle.approved = approved_reference(bundle)
    return bundle.save(out)


def check_rule(rule: str, private_net: bool) -> None:
    """``rule`` is one of ``blend.BLEND_RULES``, and ``endpoint`` where the private net adds options."""
    if rule not in blend.BLEND_RULES:
        raise InputError(f"--rule must be one of {', '.join(blend.BLEND_RULES)}, got {rule!r}")
    if private_net and rule != "endpoint":
        raise InputError("--private-net adds options to choose among per endpoint: it needs --rule endpoint")


def blend_node(data: task.PartnerData, fed_bundle_dir: Path, out: Path, mcfg: ModelConfig,
               fallback: str = blend.DEFAULT_FALLBACK_RULE, private_net: bool = False,
               rule: str = blend.DEFAULT_BLEND_RULE) -> tuple[Path, dict]:
    """On the partner's node, after a federated run: fit the private trees (``blend.fit_private_trees``,
    the partner's own train rows), pick per endpoint under ``rule`` (``blend.blend_partner``: ``equal``,
    the equal blend everywhere, or ``endpoint``, the option best on its valid rows, the ``fallback`` rule's
    option where they cannot score it: ``nn`` or ``equal``; ``consortium`` needs the other partners' votes
    and is not available on one node), write the blended bundle to ``out``.
    Returns (the bundle folder, the summary)."""
    if fallback not in blend.RULE_OPTION or fallback == "consortium":
        raise InputError(f"--fallback must be nn or equal on a node, got {fallback!r}")
    check_rule(rule, private_net)
    nn = blend.federated_nn_predictions(fed_bundle_dir, data)
    trees = blend.fit_private_trees(data, mcfg)
    tree_pred = trees.fold_predictions(data)
    net = blend.fit_private_net(data, mcfg) if private_net else None
    result = blend.blend_partner(data, nn, tree_pred, default=blend.RULE_OPTION[fallback],
                                 net=net.fold_predictions(data) if net is not None else None, rule=rule)
    path = write_blend_bundle(fed_bundle_dir, data, trees, result, out, mcfg, private_net=net)
    return path, json.loads((path / SUMMARY_FILE).read_text())


def write_simulated_bundles(partners: list[task.PartnerData], results: dict[str, dict], private_trees: dict,
                            node_dirs: dict[str, Path], mcfg: ModelConfig | None = None,
                            fed_trees=None, private_nets: dict | None = None) -> dict[str, Path]:
    """The simulation's blended bundles: per partner with a blend result and its private trees,
    ``node_dirs[partner] / BUNDLE_DIR`` from its node bundle, the trees and the choice already made (no
    refit); ``fed_trees``: the run's ``federation.trees.FederatedTreesResult`` (each node's models are
    read from its own folder). A partner whose bundle cannot be written is logged and left out (the run's
    scores stand)."""
    out = {}
    for data in partners:
        name = data.partner
        trees = private_trees.get(name)
        if name not in results or trees is None:
            continue
        node = Path(node_dirs[name])
        if not (node / "bundle" / "bundle.json").is_file():
            continue  # no federated bundle on this node (the run did not write one)
        try:
            part = (federated_trees_part(node, fed_trees.token, fed_trees.endpoints, list(trees.task_names))
                    if fed_trees is not None else None)
            out[name] = write_blend_bundle(node / "bundle", data, trees, results[name], node / BUNDLE_DIR, mcfg, part,
                                           (private_nets or {}).get(name))
        except Exception as exc:  # noqa: BLE001 - packaging comes after the run's scores; it must not lose them
            log.warning("%s: blended bundle not written: %s: %s", name, type(exc).__name__, exc)
    return out
