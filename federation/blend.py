"""The federated blend: per partner and endpoint, the federated net, the partner's private trees, or both.

On each partner's node, after the federated run:

- **federated NN**: the partner's own bundle (global trunk + its heads; ``modelio.report_metrics``
  writes it in the node-local folder) predicts the partner's ``valid`` and ``test`` rows;
- **private trees** (:class:`PrivateTrees`, :func:`fit_private_trees`): LightGBM per endpoint with the
  default recipe's settings (``ModelConfig.cli_default``, the reference's ensemble size), trained on
  the partner's own ``train`` rows only and early-stopped on an *inner* scaffold split of those train
  rows (``INNER_VALID_FRACTION`` of them; :func:`inner_split`), never on the ``valid`` rows; nothing
  about it leaves the node;
- **equal blend**: the mean of the two (the net alone where LightGBM has no model, as
  ``admet.members.BlendMember`` does);
- **federated trees** (optional): per-partner predictions from a federated tree ensemble, when the
  caller passes them (``extra``);
- **private net** (``FederatedConfig.blend_private_net``, off by default; :class:`PrivateNet`,
  :func:`fit_private_net`): the default recipe's multitask net(s) trained on the partner's own
  inner-train rows and early-stopped on the same inner split as the trees, never on ``valid``. Four
  options mix it in (``PRIVATE_NET_WEIGHTS``, weights on federated net / private net / trees): the
  private net alone (0, 1, 0), with the trees (0, .5, .5), with the federated net (.5, .5, 0) and all
  three (1/3 each, the partner's own recipe averaged with the federated net). Why: on the full catalog
  the largest partner lost to its best solo model in both partitions, because its own data train a
  net at least as good as the federated one; the options let such a partner keep its own net and add
  the federated one where its valid rows say so. Measured on the full catalog (seed 1): neutral on a
  cross-fit valid estimate (+0.001) and below the default blend on test (mean -0.007, 14 vs 15 of 20
  partners above best solo), so it stays opt-in. Nothing about the private net leaves the node.

Which option a partner's bundle uses is the **rule** (``FederatedConfig.blend_rule``, ``BLEND_RULES``):

- ``equal`` (the default): the equal blend for every endpoint, no choice. The per-endpoint valid scores of
  every option are still computed and written (a diagnostic). Why: on the full catalog (20 partners, two
  partitions, ``bench/federation_blend_rules.py``), with the trees' valid predictions coming from the trees
  the partner keeps, a cross-fit valid estimate (choose on half of each partner's valid rows, score the
  other half) ranked "no choice" (the equal blend, or the net alone) above every choosing rule (per
  endpoint, per partner, with a margin): a valid fold of a few dozen labels per endpoint picks noise more
  often than it picks the better model. The equal blend is also the default ADMET family's own rule
  (``admet.members.BlendMember``).
- ``endpoint``: per endpoint the option with the best primary metric on the partner's **valid** rows
  (``choose``). Ties go to the earlier option in ``PREFERENCE``. The options ``--private-net`` and
  ``--federated-trees`` add are offered only under this rule (``FederatedConfig`` refuses them with
  ``equal``).

Under either rule test labels are never read.

Why the choice is fair (issue 10 §5): none of the options was fitted or early-stopped on the valid rows
it is chosen on. The federated NN trains on ``train`` rows only; its ``evaluate`` phase computes a
valid loss each round, on which the server keeps the round of lowest loss (``keep_best_round``, one
early-stopping decision over the run's rounds, as the best-solo net stops on its valid rows) and federated
tuning may prune; head fine-tuning (off by default) uses train rows.
The private trees stop early on an inner split of the train rows. The best-solo reference
(``federation.baselines``) stays exactly the default recipe, LightGBM early-stopped on ``valid``; its
LightGBM used to be the private trees, and then the valid scores it was chosen on ran high
(mean valid - test +0.075 against -0.026 for the net on the 40k-row 20-partner run,
``bench/results/federation_best_solo_reblend.json``). The design chosen over cross-fitting two halves
of valid: one extra LightGBM fit per partner (on 80 % of its train rows) instead of two, and the whole
valid fold stays available to the choice. The trees the partner keeps (its blended bundle, its test scores)
are refit on all its train rows with the rounds early stopping on the inner split found
(``fit_private_trees(refit=True)``, the default): a second LightGBM fit. Without the refit the partner's kept
trees saw 20 % fewer rows than its best-solo LightGBM. The valid scores are those of the kept trees too
(``PrivateTrees.predict_valid``): they did not see the valid rows either, and the choice then judges the model
the partner keeps. (Earlier the valid scores came from the inner-split trees, fitted on 80 % of the
train rows: they ran below the kept trees' test scores, and the choice was biased towards the net.)

Where the valid rows cannot score an endpoint (fewer than ``scoring.MIN_TEST`` labels, one class) the
fallback rule decides (``FederatedConfig.blend_fallback``):

- ``nn`` (the default): the federated NN. There is no partner-specific evidence, so take the model
  trained on the most data. It became the default after the 40k-row benchmark (there the equal
  fallback lost to the net alone: 369 of 511 partner-endpoints could not be scored on valid rows);
  the full-catalog run (``bench/results/federation_best_solo_full.json``) is its first fresh check;
- ``consortium``: the option that won most often on the valid rows of the *other* partners
  that can score that endpoint (``consortium_fallback``; ties go to the earlier option in
  ``CONSORTIUM_ORDER``); where no partner can, the federated NN.
  Each partner contributes only endpoint -> its winning option, for the endpoints its valid rows
  score (``valid_votes``). In the simulation the runner computes this in its own process; no Flower
  message carries it (``docs/PRIVACY.md``);
- ``equal``: the equal blend, the default family's rule (the earlier default).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from admet.tasks import TaskSpec
from federation import scoring, task

log = logging.getLogger(__name__)

FED_NN, PRIVATE_TREES, EQUAL_BLEND, FED_TREES = "federated_nn", "private_trees", "equal_blend", "federated_trees"
#: The options with the partner's private net (``PrivateNet``; ``FederatedConfig.blend_private_net``).
PRIVATE_NET, PRIVATE_BLEND, FED_PRIVATE, ALL_THREE = "private_net", "private_blend", "fed_private_nets", "all_three"
#: Per option with the private net: (weight on the federated net, weight on the private net); the private
#: trees get the rest. ``all_three`` is the partner's own recipe (private net + private trees) averaged with
#: the federated net.
PRIVATE_NET_WEIGHTS = {PRIVATE_NET: (0.0, 1.0), PRIVATE_BLEND: (0.0, 0.5), FED_PRIVATE: (0.5, 0.5),
                       ALL_THREE: (1.0 / 3.0, 1.0 / 3.0)}
#: Order of preference on ties.
PREFERENCE = (EQUAL_BLEND, FED_NN, PRIVATE_TREES, FED_TREES, ALL_THREE, FED_PRIVATE, PRIVATE_BLEND, PRIVATE_NET)
#: ``FederatedConfig.blend_rule`` values: ``equal`` (every endpoint the equal blend) or ``endpoint`` (per endpoint
#: the option best on the partner's valid rows, :func:`choose`).
BLEND_RULES = ("equal", "endpoint")
DEFAULT_BLEND_RULE = "equal"
#: ``FederatedConfig.blend_fallback`` values: how an endpoint the partner's valid rows cannot score is chosen.
FALLBACK_RULES = ("nn", "consortium", "equal")
DEFAULT_FALLBACK_RULE = "nn"
#: The option a rule gives an endpoint that neither the partner's valid rows nor the consortium can score.
RULE_OPTION = {"nn": FED_NN, "consortium": FED_NN, "equal": EQUAL_BLEND}
#: The default rule's option (``choose`` without ``default``).
FALLBACK = RULE_OPTION[DEFAULT_FALLBACK_RULE]
#: Share of a partner's train rows (whole scaffold groups) the private trees stop early on.
INNER_VALID_FRACTION = 0.2
#: Consortium fallback: tie order among the most-voted options, and the first is the pick when no
#: partner can score the endpoint (the federated NN: it is the model trained on the most data).
CONSORTIUM_ORDER = (FED_NN, EQUAL_BLEND, PRIVATE_TREES, FED_TREES)
#: How each rule picks, as the node's choice record says it.
RULE_TEXT = {"equal": "equal blend of the federated net and the private trees for every endpoint (no choice)",
             "endpoint": "per endpoint, best primary metric on the partner's valid rows"}
BLEND_FILE = "federated_blend.json"
TREE_PREDICTIONS_FILE = "private_trees_predictions.npz"
NET_PREDICTIONS_FILE = "private_net_predictions.npz"


def equal_blend(nn: np.ndarray, trees: np.ndarray) -> np.ndarray:
    """``(nn + trees) / 2``; the net alone where the trees are NaN (no model for that endpoint)."""
    nn, trees = np.asarray(nn, float), np.asarray(trees, float)
    return np.where(np.isnan(trees), nn, 0.5 * (nn + trees))


def candidates(nn: np.ndarray, trees: np.ndarray, extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every option's (n, T) predictions for one fold; trees NaN columns fall back to the net."""
    trees = np.asarray(trees, float)
    out = {FED_NN: np.asarray(nn, float), PRIVATE_TREES: np.where(np.isnan(trees), nn, trees),
           EQUAL_BLEND: equal_blend(nn, trees)}
    for name, pred in (extra or {}).items():
        pred = np.asarray(pred, float)
        out[name] = np.where(np.isnan(pred), nn, pred)
    return out


def private_net_options(nn: np.ndarray, trees: np.ndarray, net: np.ndarray) -> dict[str, np.ndarray]:
    """The options with the private net for one fold (``PRIVATE_NET_WEIGHTS``), as ``candidates``' ``extra``:
    ``admet.members.mix_three`` of (federated net, trees, private net), what the blended bundle computes."""
    from admet.members import mix_three

    nn, trees, net = (np.asarray(x, float) for x in (nn, trees, net))
    return {name: mix_three(nn, trees, net, w, v) for name, (w, v) in PRIVATE_NET_WEIGHTS.items()}


def choose(valid: dict[str, np.ndarray], Y_valid: np.ndarray, tasks: list[TaskSpec],
           fallback: dict[str, str] | None = None, default: str = FALLBACK) -> dict[str, dict]:
    """Per endpoint ``{"choice": option, "valid": {option: score}, "by": how}`` from the valid fold only.

    ``by``: ``valid`` (best on the partner's own valid rows), ``consortium`` (its valid rows cannot score
    the endpoint; ``fallback[endpoint]``, e.g. :func:`consortium_fallback`'s pick), else the ``default``
    option (the federated NN unless the caller says otherwise): ``nn`` / ``equal`` for those two options.
    """
    per_option = {name: scoring.endpoint_scores(pred, Y_valid, tasks) for name, pred in valid.items()}
    order = [o for o in PREFERENCE if o in valid] + [o for o in valid if o not in PREFERENCE]
    out = {}
    for t in tasks:
        scores = {o: per_option[o][t.name]["value"] for o in order if t.name in per_option[o]}
        if scores:
            best = max(scores.values())
            pick, by = next(o for o in order if o in scores and scores[o] == best), "valid"
        elif fallback and fallback.get(t.name) in valid:
            pick, by = fallback[t.name], "consortium"
        else:
            pick = default if default in valid else order[0]
            by = {FED_NN: "nn", EQUAL_BLEND: "equal"}.get(pick, "default")
        out[t.name] = {"choice": pick, "valid": scores, "by": by}
    return out


def by_rule(choice: dict[str, dict], rule: str) -> dict[str, dict]:
    """``choose``'s result under ``rule`` (``BLEND_RULES``): as it is for ``endpoint``; for ``equal`` every
    endpoint takes the equal blend (``by``: ``rule``), the valid scores kept as they are."""
    if rule not in BLEND_RULES:
        raise ValueError(f"blend rule {rule!r} is not one of {BLEND_RULES}")
    if rule == "endpoint":
        return choice
    return {ep: {"choice": EQUAL_BLEND, "valid": c["valid"], "by": "rule"} for ep, c in choice.items()}


def valid_votes(choice: dict[str, dict]) -> dict[str, str]:
    """What one partner lends the consortium fallback: endpoint -> the option that won on its own valid
    rows, only for the endpoints its valid rows can score (nothing else: no scores, no counts)."""
    return {ep: c["choice"] for ep, c in choice.items() if c["valid"]}


def consortium_fallback(votes: dict[str, dict[str, str]], endpoints: list[str]) -> dict[str, dict]:
    """Per endpoint ``{"choice": option, "votes": {option: n}}``: the option most partners' valid rows chose.

    ``votes``: partner -> :func:`valid_votes`. Ties go to the earlier option in ``CONSORTIUM_ORDER``;
    an endpoint nobody can score on valid rows gets the federated NN (the model trained on the most
    data) with ``votes == {}``. Reads no test labels (the votes come from valid rows only).
    """
    out = {}
    for ep in endpoints:
        counts: dict[str, int] = {}
        for partner_votes in votes.values():
            if ep in partner_votes:
                counts[partner_votes[ep]] = counts.get(partner_votes[ep], 0) + 1
        if counts:
            order = [o for o in CONSORTIUM_ORDER if o in counts] + sorted(o for o in counts if o not in CONSORTIUM_ORDER)
            top = max(counts.values())
            pick = next(o for o in order if counts[o] == top)
        else:
            pick = FED_NN
        out[ep] = {"choice": pick, "votes": counts}
    return out


def apply(test: dict[str, np.ndarray], choice: dict[str, dict], tasks: list[TaskSpec]) -> np.ndarray:
    """The blend's (n, T) predictions: column j from the option chosen for endpoint j."""
    first = next(iter(test.values()))
    out = np.full(first.shape, np.nan)
    for j, t in enumerate(tasks):
        out[:, j] = test[choice[t.name]["choice"]][:, j]
    return out


def federated_nn_predictions(bundle_dir: Path, data: task.PartnerData) -> dict[str, np.ndarray]:
    """The partner's federated model (its node bundle) on its valid and test rows, its own task order."""
    from admet.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    cols = [bundle.task_names.index(n) for n in data.task_names]
    out = {}
    for fold in ("valid", "test"):
        X = bundle.features.scaler.transform(data.X[data.rows(fold)])
        mean, _ = bundle.ensemble.predict(X)
        out[fold] = mean[:, cols]
    return out


def with_private_net(nn: dict[str, np.ndarray], trees: dict[str, np.ndarray], net: dict[str, np.ndarray] | None,
                     extra: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``extra`` plus the private-net options (:func:`private_net_options`) when ``net`` (fold -> predictions)."""
    out = dict(extra or {})
    if net is not None:
        per_fold = {fold: private_net_options(nn[fold], trees[fold], net[fold]) for fold in ("valid", "test")}
        for name in PRIVATE_NET_WEIGHTS:
            out[name] = {fold: per_fold[fold][name] for fold in per_fold}
    return out


def blend_partner(data: task.PartnerData, nn: dict[str, np.ndarray], trees: dict[str, np.ndarray],
                  extra: dict[str, dict[str, np.ndarray]] | None = None,
                  fallback: dict[str, str] | None = None, default: str = FALLBACK,
                  net: dict[str, np.ndarray] | None = None, rule: str = DEFAULT_BLEND_RULE) -> dict:
    """Choose under ``rule`` (``BLEND_RULES``) from the valid rows, score on test. ``nn`` / ``trees``: fold ->
    (n_fold, T_own) predictions; ``extra``: option name -> fold -> predictions (e.g. federated trees);
    ``fallback``: endpoint -> option for the endpoints the partner's valid rows cannot score; ``default``
    where it names none; ``net``: the private net's fold -> predictions (adds the ``PRIVATE_NET_WEIGHTS``
    options). ``extra`` and ``net`` are options to choose among: only with ``rule="endpoint"``."""
    if rule == "equal" and (extra or net is not None):
        raise ValueError("the private-net and federated-tree options are chosen per endpoint: rule 'endpoint'")
    extra = with_private_net(nn, trees, net, extra)
    valid = candidates(nn["valid"], trees["valid"], {k: v["valid"] for k, v in extra.items()})
    test = candidates(nn["test"], trees["test"], {k: v["test"] for k, v in extra.items()})
    choice = by_rule(choose(valid, data.Y[data.rows("valid")], data.tasks, fallback, default), rule)
    Y_test = data.Y[data.rows("test")]
    blended = scoring.endpoint_scores(apply(test, choice, data.tasks), Y_test, data.tasks)
    by_option = {name: scoring.endpoint_scores(pred, Y_test, data.tasks) for name, pred in test.items()}
    return {"metric": scoring.partner_metric(blended),
            "endpoints": {k: v["value"] for k, v in blended.items()},
            "choice": {k: v["choice"] for k, v in choice.items()},
            "chosen_by": {k: v["by"] for k, v in choice.items()},
            "valid_scores": {k: v["valid"] for k, v in choice.items()},
            "test_by_option": {name: {"metric": scoring.partner_metric(s),
                                      "endpoints": {k: v["value"] for k, v in s.items()}}
                               for name, s in by_option.items()}}


def partner_votes(partners: list[task.PartnerData], nn: dict[str, dict[str, np.ndarray]],
                  trees: dict[str, dict], extra: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                  nets: dict[str, dict[str, np.ndarray]] | None = None) -> dict[str, dict[str, str]]:
    """partner -> :func:`valid_votes` (each partner's own valid-row choice, before any fallback)."""
    out = {}
    for data in partners:
        if data.partner not in nn or data.partner not in trees:
            continue
        ex = with_private_net(nn[data.partner], trees[data.partner], (nets or {}).get(data.partner),
                              (extra or {}).get(data.partner))
        valid = candidates(nn[data.partner]["valid"], trees[data.partner]["valid"], {k: v["valid"] for k, v in ex.items()})
        out[data.partner] = valid_votes(choose(valid, data.Y[data.rows("valid")], data.tasks))
    return out


def blend_consortium(partners: list[task.PartnerData], nn: dict[str, dict[str, np.ndarray]], trees: dict[str, dict],
                     extra: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                     fallback: str = DEFAULT_FALLBACK_RULE, nets: dict[str, dict[str, np.ndarray]] | None = None,
                     rule: str = DEFAULT_BLEND_RULE) -> tuple[dict[str, dict], dict[str, dict]]:
    """:func:`blend_partner` for every partner with net and tree predictions, under ``rule`` and (``endpoint``
    rule) the ``fallback`` rule.

    ``nn`` / ``trees``: partner -> fold -> predictions; ``extra``: partner -> option -> fold -> predictions;
    ``nets``: partner -> fold -> its private net's predictions (the private-net options).
    Returns (partner -> result, endpoint -> :func:`consortium_fallback` entry; empty under ``nn`` / ``equal``).
    """
    if fallback not in FALLBACK_RULES:
        raise ValueError(f"blend fallback {fallback!r} is not one of {FALLBACK_RULES}")
    consortium: dict[str, dict] = {}
    if fallback == "consortium" and rule == "endpoint":
        endpoints = sorted({n for d in partners for n in d.task_names})
        consortium = consortium_fallback(partner_votes(partners, nn, trees, extra, nets), endpoints)
    picks = {ep: c["choice"] for ep, c in consortium.items()} or None
    out = {}
    for data in partners:
        if data.partner not in nn or data.partner not in trees:
            continue
        out[data.partner] = blend_partner(data, nn[data.partner], trees[data.partner],
                                          (extra or {}).get(data.partner), picks, RULE_OPTION[fallback],
                                          (nets or {}).get(data.partner), rule)
    return out, consortium


def federated_blend(partners: list[task.PartnerData], bundle_dirs: dict[str, Path], trees: dict[str, dict],
                    extra: dict[str, dict[str, dict[str, np.ndarray]]] | None = None,
                    write_choice: bool = True, fallback: str = DEFAULT_FALLBACK_RULE,
                    nets: dict[str, dict[str, np.ndarray]] | None = None,
                    rule: str = DEFAULT_BLEND_RULE) -> dict[str, dict]:
    """Per partner :func:`blend_partner` under ``rule``; partners without a bundle or private trees are left out.

    ``trees``: partner -> fold -> private-tree predictions (:func:`fit_private_trees`); ``extra``: partner -> option -> fold -> predictions;
    ``fallback``: ``FederatedConfig.blend_fallback``. With ``write_choice`` the per-endpoint choice, how
    it was made and the valid scores go to ``BLEND_FILE`` next to the partner's bundle (its node-local folder).
    """
    nn = {}
    for data in partners:
        folder = bundle_dirs.get(data.partner)
        if folder is None or not Path(folder).is_dir() or data.partner not in trees:
            log.warning("%s: no federated bundle or private trees; no federated blend", data.partner)
            continue
        nn[data.partner] = federated_nn_predictions(folder, data)
    out, consortium = blend_consortium(partners, nn, trees, extra, fallback, nets, rule)
    for name, res in out.items():
        if write_choice:
            folder = Path(bundle_dirs[name])
            record = {"rule": RULE_TEXT[rule],
                      "fallback": fallback, "choice": res["choice"], "chosen_by": res["chosen_by"],
                      "consortium_votes": {ep: consortium[ep]["votes"] for ep, by in res["chosen_by"].items()
                                           if by == "consortium"},
                      "valid_scores": res["valid_scores"]}
            (folder.parent / BLEND_FILE).write_text(json.dumps(record, indent=1))
            data = next(d for d in partners if d.partner == name)
            save_private_tree_predictions(folder.parent, data, trees[name])
            if nets and name in nets:
                save_private_net_predictions(folder.parent, data, nets[name])
        log.info("federated blend %s: %.3f (%s)", name, res["metric"], res["choice"])
    return out


def save_private_tree_predictions(node_dir: Path, data: task.PartnerData, trees: dict[str, np.ndarray]) -> Path:
    """The private trees' valid / test predictions in the partner's node folder (they stay there), so a
    later step can blend another option in without retraining (``bench/federation.py --modes fedtrees``)."""
    path = Path(node_dir) / TREE_PREDICTIONS_FILE
    np.savez(path, tasks=np.array(data.task_names), valid=trees["valid"], test=trees["test"])
    return path


def save_private_net_predictions(node_dir: Path, data: task.PartnerData, net: dict[str, np.ndarray]) -> Path:
    """The private net's valid / test predictions in the partner's node folder (as the trees' are)."""
    path = Path(node_dir) / NET_PREDICTIONS_FILE
    np.savez(path, tasks=np.array(data.task_names), valid=net["valid"], test=net["test"])
    return path


def load_private_net_predictions(node_dir: Path, data: task.PartnerData) -> dict[str, np.ndarray] | None:
    """The saved private-net predictions, or None where the run had no private net."""
    path = Path(node_dir) / NET_PREDICTIONS_FILE
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        if [str(t) for t in z["tasks"]] != data.task_names:
            raise ValueError(f"{data.partner}: saved private-net predictions are for other endpoints")
        return {"valid": z["valid"], "test": z["test"]}


def load_private_tree_predictions(node_dir: Path, data: task.PartnerData) -> dict[str, np.ndarray]:
    with np.load(Path(node_dir) / TREE_PREDICTIONS_FILE, allow_pickle=False) as z:
        if [str(t) for t in z["tasks"]] != data.task_names:
            raise ValueError(f"{data.partner}: saved private-tree predictions are for other endpoints")
        return {"valid": z["valid"], "test": z["test"]}


def federated_tree_option(per_endpoint: dict[str, dict[str, np.ndarray]], data: task.PartnerData) -> dict[str, np.ndarray]:
    """``federation.trees`` predictions of one partner (endpoint -> fold -> (n_fold,)) as fold -> (n_fold, T_own);
    endpoints without federated trees are NaN (the option falls back to the net there)."""
    out = {}
    for fold in ("valid", "test"):
        n = len(data.rows(fold))
        out[fold] = np.column_stack([np.asarray(per_endpoint[name][fold], float) if name in per_endpoint
                                     else np.full(n, np.nan) for name in data.task_names]).reshape(n, len(data.tasks))
    return out


@dataclass(slots=True)
class PrivateTrees:
    """The blend's private trees of one partner: LightGBM members (``admet.members.LGBMMember``, the
    default recipe's settings) on the partner's feature scaling. ``chooser``: early-stopped on an inner
    split of its train rows, it finds the rounds; ``members``: the same members refit on all its train rows
    with those rounds, the model the partner keeps (``predict``: the blended bundle, and the valid rows the
    rule reads, ``predict_valid``). Both take raw (unscaled) features."""

    scaler: object
    """``admet.features.FeatureScaler`` fit on the partner's ``train`` rows (as the best-solo model's)."""
    members: list
    """``admet.members.LGBMMember`` per seed (``mcfg.seed + i``); their mean is the prediction."""
    inner_valid: np.ndarray
    """bool over the partner's ``train`` rows (``data.rows("train")`` order): True = stopped early on."""
    task_names: list[str]
    chooser: list | None = None
    """The members fitted on the inner-train rows only (None: ``members`` are those, no refit)."""

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        """(n, T) mean over members; NaN where an endpoint has no booster (the blend then uses the net)."""
        return self._mean(self.members, X_raw)

    def predict_valid(self, X_raw: np.ndarray) -> np.ndarray:
        """What the blend reads on the valid rows: the kept members' prediction (neither they nor the
        chooser saw the valid rows), so the valid scores judge the model the partner keeps."""
        return self.predict(X_raw)

    def fold_predictions(self, data: task.PartnerData) -> dict[str, np.ndarray]:
        """``{"valid": predict_valid, "test": predict}`` on the partner's own rows."""
        return {"valid": self.predict_valid(data.X[data.rows("valid")]), "test": self.predict(data.X[data.rows("test")])}

    def _mean(self, members: list, X_raw: np.ndarray) -> np.ndarray:
        Xs = self.scaler.transform(X_raw)
        with np.errstate(all="ignore"):
            return np.mean([m.predict(Xs) for m in members], axis=0)

    @property
    def best_iterations(self) -> list[list[int | None]]:
        """Rounds per member and endpoint, as early stopping on the inner split found them."""
        return [list(m.best_iterations) for m in (self.chooser if self.chooser is not None else self.members)]


def inner_split(data: task.PartnerData, fraction: float = INNER_VALID_FRACTION, seed: int = 0) -> np.ndarray:
    """bool over the partner's train rows: True for the rows the private trees stop early on.

    A balanced Bemis-Murcko scaffold split of the train rows' SMILES (``pipelines.split.scaffold_split``,
    whole scaffold groups on one side, as the partner's own folds are); where the partner carries no
    SMILES (synthetic data), a seeded random ``fraction`` of the rows.
    """
    train = data.rows("train")
    if data.smiles is None:
        rng = np.random.default_rng(seed)
        mask = np.zeros(len(train), bool)
        mask[rng.permutation(len(train))[:int(round(fraction * len(train)))]] = True
        return mask
    from pipelines.split import scaffold_split

    fold = scaffold_split([str(s) for s in data.smiles[train]], fractions=(1.0 - fraction, fraction, 0.0), seed=seed)
    return np.asarray(fold) != "train"


def fit_private_trees(data: task.PartnerData, mcfg, fraction: float = INNER_VALID_FRACTION,
                      refit: bool = True) -> PrivateTrees:
    """LightGBM per endpoint on the partner's inner-train rows, early-stopped on its inner-valid rows
    (:func:`inner_split`); ``mcfg``: an ``admet.config.ModelConfig`` (its LightGBM settings, ``seed`` and
    ``ensemble``: member i uses seed ``mcfg.seed + i``). With ``refit`` (the default) each member is then
    fit again on all the train rows with the rounds its early stopping found: the partner keeps (and the
    blend reads) trees that saw all its train rows, as its best-solo LightGBM does; the cost is a second fit. Reads no ``valid`` or ``test`` rows."""
    from admet.members import LGBMMember

    scaler, Xs, Y, C, inner, chooser = _fit_on_inner_split(LGBMMember, data, mcfg, fraction)
    if not refit:
        return PrivateTrees(scaler, chooser, inner, list(data.task_names))
    final = [LGBMMember.fit(Xs, Y, C, data.tasks, mcfg, mcfg.seed + i, rounds=m.best_iterations)
             for i, m in enumerate(chooser)]
    return PrivateTrees(scaler, final, inner, list(data.task_names), chooser=chooser)


@dataclass(slots=True)
class PrivateNet:
    """The blend's private net of one partner: the default recipe's multitask net(s)
    (``admet.members.MTNNMember``, ``mcfg.ensemble`` seeds) on the partner's own feature scaling, trained
    on its inner-train rows and early-stopped on the inner split (the private trees' :func:`inner_split`),
    never on ``valid``; the same members predict the valid rows the choice reads and the test rows (no
    refit). Nothing about it leaves the node."""

    scaler: object
    members: list
    task_names: list[str]

    def predict(self, X_raw: np.ndarray) -> np.ndarray:
        Xs = self.scaler.transform(X_raw)
        return np.mean([m.predict(Xs) for m in self.members], axis=0)

    def fold_predictions(self, data: task.PartnerData) -> dict[str, np.ndarray]:
        return {fold: self.predict(data.X[data.rows(fold)]) for fold in ("valid", "test")}


def fit_private_net(data: task.PartnerData, mcfg, fraction: float = INNER_VALID_FRACTION) -> PrivateNet:
    """``mcfg.ensemble`` nets (``ModelConfig``: the default recipe's architecture and training) on the
    partner's inner-train rows, early-stopped on its inner-valid rows. Reads no ``valid`` or ``test`` rows."""
    from admet.members import MTNNMember

    scaler, _, _, _, _, members = _fit_on_inner_split(MTNNMember, data, mcfg, fraction)
    return PrivateNet(scaler, members, list(data.task_names))


def _fit_on_inner_split(member_cls, data: task.PartnerData, mcfg, fraction: float):
    """``mcfg.ensemble`` members of ``member_cls`` (seed ``mcfg.seed + i``) on the partner's train rows scaled
    on its own train rows, fitted on the inner-train rows and stopped on the inner split (:func:`inner_split`).
    Returns (scaler, scaled train X, train Y, train censor, the inner mask, the members)."""
    from admet.features import FeatureScaler

    train = data.rows("train")
    X, Y, C = data.X[train], data.Y[train], data.censor[train]
    scaler = FeatureScaler.fit(X, clip=mcfg.feature_clip)
    Xs = scaler.transform(X)
    inner = inner_split(data, fraction, mcfg.seed)
    fit_rows, stop_rows = np.flatnonzero(~inner), np.flatnonzero(inner)
    members = [member_cls.fit(Xs[fit_rows], Y[fit_rows], C[fit_rows], data.tasks, mcfg, mcfg.seed + i,
                              valid=(Xs[stop_rows], Y[stop_rows], C[stop_rows]))
               for i in range(int(mcfg.ensemble))]
    return scaler, Xs, Y, C, inner, members


def valid_test_gaps(results: dict[str, dict]) -> dict:
    """How far each option's valid score sits above its test score, over the partner-endpoints that
    both folds score for every option (``results``: partner -> :func:`blend_partner` result). A fair
    choice has no option whose valid scores run systematically high. Reads test scores: a diagnostic
    for the report, never an input to the choice."""
    gaps: dict[str, list[float]] = {}
    n_both = agree = 0
    for res in results.values():
        for ep, valid_scores in res["valid_scores"].items():
            test_scores = {o: r["endpoints"][ep] for o, r in res["test_by_option"].items() if ep in r["endpoints"]}
            if not valid_scores or set(test_scores) != set(valid_scores):
                continue
            n_both += 1
            for o in valid_scores:
                gaps.setdefault(o, []).append(valid_scores[o] - test_scores[o])
            agree += test_scores[res["choice"][ep]] == max(test_scores.values())
    return {"n_partner_endpoints_scored_on_valid_and_test": n_both,
            "valid_winner_is_a_test_winner": agree,
            "mean_valid_minus_test": {o: float(np.mean(g)) for o, g in gaps.items()},
            "median_valid_minus_test": {o: float(np.median(g)) for o, g in gaps.items()}}


def choice_counts(results: dict[str, dict]) -> dict[str, int]:
    """``"how:option" -> n`` over every partner-endpoint (``how``: valid / consortium / nn / equal)."""
    counts: dict[str, int] = {}
    for res in results.values():
        for ep, how in res["chosen_by"].items():
            key = f"{how}:{res['choice'][ep]}"
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
