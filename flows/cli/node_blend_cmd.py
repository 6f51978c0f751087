"""``fedadmet node blend``: after a federated run, a partner packages its federated blend on its own node.

It reads the node's prepared table and its federated bundle (``WORK/bundle``, written by the node when
the run ends), fits its private trees on its own rows, takes their equal blend with the federated net
(``--rule equal``, the default) or chooses per endpoint on its valid rows (``--rule endpoint``) and writes
a blended bundle (``federation.blend_bundle``) that ``fedadmet admet predict -m`` / ``fedadmet screen
-m`` load. No network: nothing is sent anywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipelines.errors import InputError

console = Console()

_WORK_HELP = ("The node's work folder, holding the federated bundle (bundle/) and the prepared table "
              "(prepared/): <run-dir>/nodes/<partner>/work for `node start`, <out>/nodes/<partner> for `federate`.")


def check_preparation_matches(work: Path, settings) -> None:
    """The catalog and fold secret given now must be the ones the node trained with (its
    ``prepared/summary.json``): other folds would put the federated net's training rows into the valid
    rows the blend is chosen on."""
    from pipelines.partner_data import NODE_SUMMARY
    from pipelines.split import SIMULATION_FOLD_SECRET, fold_secret_fingerprint

    path = work / "prepared" / NODE_SUMMARY
    if not path.is_file():
        return
    try:
        before = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    catalog, _, secret = settings.load()
    if before.get("fold_secret_check") and before["fold_secret_check"] != fold_secret_fingerprint(
            secret or SIMULATION_FOLD_SECRET):
        raise InputError(f"the fold secret differs from the one this node trained with ({path}); pass the same "
                         "--fold-secret as to `node start`")
    if before.get("catalog_sha256") and before["catalog_sha256"] != catalog.sha256:
        raise InputError(f"the endpoint catalog differs from the one this node trained with ({path}); pass the "
                         "same --catalog as to `node start`")


def _fmt(v) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.3f}"


def _print_summary(summary: dict, path: Path) -> None:
    from federation import blend

    options = (blend.FED_NN, blend.PRIVATE_TREES, blend.EQUAL_BLEND)
    private = any(blend.ALL_THREE in e["valid"] for e in summary["endpoints"].values())
    cols = ["endpoint", "choice", "by", "n valid", "valid net", "valid trees", "valid equal"]
    if private:  # the private-net options: the best of them on valid beside the others
        cols.append("valid best with private net")
    chose = any(e["chosen_by"] != "rule" for e in summary["endpoints"].values())
    table = Table(title=f"federated blend of {summary['partner']} ("
                        + ("valid rows choose" if chose else "equal blend on every endpoint; valid rows reported")
                        + "; test rows score)")
    for col in (*cols, "test blend"):
        table.add_column(col, justify="left" if col in ("endpoint", "choice", "by") else "right")
    for name, e in summary["endpoints"].items():
        extra = []
        if private:
            vals = [e["valid"][o] for o in blend.PRIVATE_NET_WEIGHTS if o in e["valid"]]
            extra = [_fmt(max(vals)) if vals else "-"]
        table.add_row(name, e["choice"], e["chosen_by"], str(e["n_valid"]),
                      *[_fmt(e["valid"].get(o)) for o in options], *extra, _fmt(e["test_blend"]))
    console.print(table)
    by_option = summary["test_metric_by_option"]
    console.print("test metric (mean primary metric): blend " + _fmt(summary["test_metric_blend"]) + "; "
                  + ", ".join(f"{o} {_fmt(v)}" for o, v in by_option.items()))
    console.print(f"wrote the blended bundle {path} and its summary {path / 'blend_summary.json'} "
                  "(they stay on this node; nothing was sent)")
    console.print(f"predict with: fedadmet admet predict INPUT -m {path} --out predictions.csv")


def node_blend(
    data: Path = typer.Option(..., "--data", help="This partner's raw table (the one given to `node start`)."),
    work: Path = typer.Option(..., "--work", help=_WORK_HELP),
    out: Path | None = typer.Option(None, "--out", help="Folder for the blended bundle (default: WORK/blend_bundle)."),
    catalog: Path | None = typer.Option(None, "--catalog", help="The consortium's catalog.json (as for `node start`)."),
    endpoint_map: Path | None = typer.Option(None, "--endpoint-map", help="Your endpoint mapping (as for `node start`)."),
    fold_secret: Path | None = typer.Option(None, "--fold-secret", help="The fold secret file (as for `node start`)."),
    ensemble: int = typer.Option(2, "--ensemble", min=1, max=50,
                                 help="LightGBM members of the private trees (the default recipe's 2)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the private trees (member i: seed + i)."),
    rule: str | None = typer.Option(None, "--rule",
                                    help="equal (every endpoint the mean of the federated net and the private "
                                         "trees; the default) or endpoint (per endpoint the option best on the "
                                         "valid rows; the default with --private-net)."),
    fallback: str = typer.Option("nn", "--fallback",
                                 help="--rule endpoint: endpoints the valid rows cannot score: nn (the federated "
                                      "net) or equal."),
    private_net: bool = typer.Option(False, "--private-net/--no-private-net",
                                     help="Also fit a private net on this partner's rows (the default recipe's net, "
                                          "early-stopped on an inner split of its train rows) and offer it, alone "
                                          "and mixed with the federated net and the trees, per endpoint (off by "
                                          "default: measured neutral on valid, docs/FEDERATION.md)."),
) -> None:
    """Package this partner's federated blend as a bundle on its node: the equal blend of the federated net
    and private LightGBM trained on its own rows (default), or with --rule endpoint per endpoint the net,
    the trees, their equal blend or (with --private-net) the options that mix in a net trained on its own
    rows only, chosen on its valid rows."""
    from admet.bundle import load_bundle
    from admet.config import ModelConfig
    from federation import task
    from federation.blend_bundle import BUNDLE_DIR, blend_node
    from flows.cli.consortium_cmd import _node_settings

    if not work.is_dir():
        raise InputError(f"--work folder not found: {work}")
    fed_dir = work / "bundle"
    if not (fed_dir / "bundle.json").is_file():
        raise InputError(f"no federated bundle in {fed_dir}: the node writes it when a federated run ends "
                         "(--work is the node's work folder)")
    if fallback not in ("nn", "equal"):
        raise InputError(f"--fallback must be nn or equal, got {fallback!r}")
    from federation.blend_bundle import check_rule
    from federation.config import resolve_blend_rule

    rule = resolve_blend_rule(rule, private_net)
    check_rule(rule, private_net)  # before the table is read
    fed = load_bundle(fed_dir)
    if (fed.info or {}).get("trained_by") != "federation" or not fed.info.get("partner"):
        raise InputError(f"{fed_dir} is not a partner's federated bundle")
    settings = _node_settings(catalog, endpoint_map, fold_secret)
    check_preparation_matches(work, settings)
    partner = str(fed.info["partner"])
    with console.status("preparing and featurizing the table (cached when `node start` did it)..."):
        part = task.load_partner(data, partner, fed.features.spec, work / "feature_cache", work, seed=seed,
                                 settings=settings)
        if fed.approved is not None:
            # the blended bundle gets the approved-drug context too: the drugs' features come from this
            # node's feature cache (the federated run's report filled it) and are kept for this process
            from admet.approved import approved_features
            from admet.features import FeatureSet

            approved_features(FeatureSet(spec=fed.features.spec, cache_dir=work / "feature_cache"))
    unknown = [n for n in part.task_names if n not in fed.task_names]
    if unknown:
        raise InputError(f"endpoint(s) {unknown} of this table are not in the federated model; pass the "
                         "--catalog / --endpoint-map used for `node start`")
    mcfg = ModelConfig.cli_default(featurizer=fed.features.spec, seed=seed, ensemble=ensemble)
    with console.status("fitting the private models and blending them with the federated net..."):
        path, summary = blend_node(part, fed_dir, out or work / BUNDLE_DIR, mcfg, fallback, private_net, rule)
    _print_summary(summary, path)
