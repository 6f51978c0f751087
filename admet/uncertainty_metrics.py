"""Does the uncertainty mean something? Held-out measures per endpoint.

Regression: coverage of the conformal interval, mean width, Spearman(interval width, |error|) and
the MAE (and coverage) inside vs outside the applicability domain. Classification: AUROC and
expected calibration error before and after probability calibration, the number of distinct
scores before and after (calibration must not merge them), and AUROC / Brier inside vs outside
the domain. Everything on the model's scale (log10 for log-trained tasks), exact labels only.
"""

from __future__ import annotations

import logging
import math

import numpy as np

log = logging.getLogger(__name__)

MIN_GROUP = 10
"""Inside/outside statistics are reported only for groups of at least this many labels."""


def _spearman(a, b) -> float | None:
    from scipy.stats import spearmanr

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def _auroc(y, p) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(y) >= MIN_GROUP and len(np.unique(y)) == 2 else None


def uncertainty_metrics(Y: np.ndarray, censor: np.ndarray, tasks, pred, coverage: float) -> dict:
    """Per endpoint measures for labels ``Y`` (model scale) and a ``CalibratedPrediction``."""
    from admet.conformal import expected_calibration_error

    status = np.asarray(pred.domain.status, dtype=object)
    inside, outside = status == "inside", status == "outside"
    out: dict = {}
    for j, t in enumerate(tasks):
        y = Y[:, j]
        if t.is_classification:
            ok = np.isfinite(y) & np.isfinite(pred.raw[:, j])
            raw, cal = pred.raw[ok, j], pred.mean[ok, j]
            d = {"n": int(ok.sum()), "auroc_raw": _auroc(y[ok], raw), "auroc_calibrated": _auroc(y[ok], cal),
                 "ece_raw": expected_calibration_error(y[ok], raw),
                 "ece_calibrated": expected_calibration_error(y[ok], cal),
                 "n_distinct_raw": int(len(np.unique(raw))), "n_distinct_calibrated": int(len(np.unique(cal)))}
            for name, grp in (("inside", inside), ("outside", outside)):
                g = grp[ok]
                d[f"n_{name}"] = int(g.sum())
                d[f"auroc_{name}"] = _auroc(y[ok][g], cal[g])
                d[f"brier_{name}"] = float(np.mean((cal[g] - y[ok][g]) ** 2)) if g.sum() >= MIN_GROUP else None
            out[t.name] = d
            continue
        lo, hi, mu = pred.lower[:, j], pred.upper[:, j], pred.mean[:, j]
        ok = np.isfinite(y) & (censor[:, j] == 0) & np.isfinite(mu)
        err = np.abs(y - mu)
        d = {"n": int(ok.sum()), "target": coverage}
        has = ok & np.isfinite(lo)
        if has.any():
            covered = (y >= lo) & (y <= hi)
            width = np.round(hi - lo, 9)  # a constant width must stay constant (float noise of mu +/- q)
            d.update({"test_coverage": float(np.mean(covered[has])), "mean_width": float(np.mean(width[has])),
                      "spearman_width_error": _spearman(width[has], err[has]),
                      "n_distinct_widths": int(len(np.unique(width[has])))})
        else:
            d.update({"test_coverage": None, "mean_width": None, "spearman_width_error": None})
        for name, grp in (("inside", inside), ("outside", outside)):
            g = ok & grp
            d[f"n_{name}"] = int(g.sum())
            d[f"mae_{name}"] = float(np.mean(err[g])) if g.sum() >= MIN_GROUP else None
            gh = g & np.isfinite(lo)
            d[f"coverage_{name}"] = float(np.mean(((y >= lo) & (y <= hi))[gh])) if gh.sum() >= MIN_GROUP else None
        out[t.name] = d
    return out


def summarize(per_endpoint: dict, target=(0.88, 0.92)) -> dict:
    """Counts against the issue's targets over the endpoints that have the measure."""
    reg = {k: v for k, v in per_endpoint.items() if "test_coverage" in v and v.get("test_coverage") is not None}
    cls = {k: v for k, v in per_endpoint.items() if "auroc_raw" in v}
    in_target = [k for k, v in reg.items() if target[0] <= v["test_coverage"] <= target[1]]
    rho = [v["spearman_width_error"] for v in reg.values() if v.get("spearman_width_error") is not None]
    worse_outside = [k for k, v in reg.items() if v.get("mae_inside") is not None and v.get("mae_outside") is not None
                     and v["mae_outside"] > v["mae_inside"]]
    both = [k for k, v in reg.items() if v.get("mae_inside") is not None and v.get("mae_outside") is not None]
    ece = [(v["ece_raw"], v["ece_calibrated"]) for v in cls.values()
           if not (math.isnan(v["ece_raw"]) or math.isnan(v["ece_calibrated"]))]
    return {
        "regression_endpoints": len(reg),
        "coverage_in_target": len(in_target), "coverage_target": list(target),
        "spearman_width_error_above_0.2": int(sum(r > 0.2 for r in rho)), "spearman_width_error_n": len(rho),
        "spearman_width_error_median": float(np.median(rho)) if rho else None,
        "mae_outside_above_inside": len(worse_outside), "mae_inside_outside_n": len(both),
        "classification_endpoints": len(cls),
        "ece_improved": int(sum(b < a for a, b in ece)), "ece_n": len(ece),
        "ranking_changed": [k for k, v in cls.items() if v["auroc_raw"] is not None
                            and abs(v["auroc_raw"] - v["auroc_calibrated"]) > 1e-9],
        "scores_merged": [k for k, v in cls.items() if v["n_distinct_calibrated"] < v["n_distinct_raw"]],
    }
