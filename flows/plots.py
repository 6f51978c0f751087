"""Report plots (PNG files, matplotlib's Agg backend): scores, endpoint histograms, partner metrics, lab curves."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

log = logging.getLogger(__name__)

DPI = 80


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def score_distribution(scores: np.ndarray, path: Path, top_n: int | None = None) -> Path:
    """Histogram of desirability scores, with the top-N cut-off marked."""
    scores = np.asarray(scores, dtype=float)
    scores = scores[~np.isnan(scores)]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(scores, bins=40, range=(0, 1), color="#4c72b0")
    if top_n and len(scores) >= top_n:
        cut = np.sort(scores)[::-1][top_n - 1]
        ax.axvline(cut, color="#c44e52", linestyle="--", label=f"top {top_n} (score >= {cut:.2f})")
        ax.legend(loc="upper left")
    ax.set_xlabel("desirability score")
    ax.set_ylabel("compounds")
    ax.set_title(f"Score distribution (n={len(scores)})")
    return _save(fig, path)


def endpoint_histograms(predictions: pd.DataFrame, endpoints: list[str], path: Path,
                        reference: Mapping[str, np.ndarray] | None = None,
                        reference_label: str = "approved drugs") -> Path:
    """One panel per endpoint: the library's predictions against a reference distribution."""
    n = max(len(endpoints), 1)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), endpoints, strict=False):
        values = predictions[name].to_numpy(dtype=float)
        values = values[~np.isnan(values)]
        ref = None if reference is None else reference.get(name)
        pooled = values if ref is None else np.concatenate([values, np.asarray(ref, float)])
        bins = np.histogram_bin_edges(pooled, bins=30) if len(pooled) else 10
        ax.hist(values, bins=bins, density=True, alpha=0.6, color="#4c72b0", label="library")
        if ref is not None and len(ref):
            ax.hist(ref, bins=bins, density=True, alpha=0.5, color="#dd8452", label=reference_label)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(endpoints):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    return _save(fig, path)


def partner_metrics(table: pd.DataFrame, path: Path, metric_label: str = "primary metric") -> Path:
    """Grouped bars per partner: best solo / federated NN / federated / pooled (the columns present in
    ``table``; ``local`` is an older name of the best solo model)."""
    series = [c for c in ("local", "best_solo", "federated_nn", "federated", "pooled") if c in table.columns]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(table) + 2), 3.8))
    x = np.arange(len(table))
    width = 0.8 / max(len(series), 1)
    colors = {"local": "#8c8c8c", "best_solo": "#8c8c8c", "federated_nn": "#8da0cb", "federated": "#4c72b0",
              "pooled": "#55a868"}
    for i, name in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, table[name].to_numpy(float), width,
               label=name, color=colors[name])
    ax.set_xticks(x)
    ax.set_xticklabels([str(p).replace("partner_", "p") for p in table.index], rotation=90, fontsize=7)
    ax.set_ylabel(metric_label)
    ax.legend(fontsize=8)
    ax.set_title("Per-partner performance: " + " vs ".join(n.replace("_", " ") for n in series))
    return _save(fig, path)


def discovery_curves(curves: Mapping[str, np.ndarray], n_pool_top: int, path: Path) -> Path:
    """Top compounds found vs compounds measured, one line per strategy (mean over repeats)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        curve = np.atleast_2d(np.asarray(curve, dtype=float))
        mean = curve.mean(axis=0)
        steps = np.arange(1, len(mean) + 1)
        ax.plot(steps, mean, label=label)
        if curve.shape[0] > 1:
            ax.fill_between(steps, curve.min(axis=0), curve.max(axis=0), alpha=0.2)
    ax.axhline(n_pool_top, color="k", linewidth=0.8, linestyle=":")
    ax.set_xlabel("compounds measured")
    ax.set_ylabel("top-10% compounds found")
    ax.legend()
    ax.set_title("Autonomous lab: discovery curve")
    return _save(fig, path)


def round_curve(rounds: pd.DataFrame, path: Path) -> Path:
    """Mean local training loss per federated round, with rejected updates marked."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(rounds["round"], rounds["train_loss"], marker="o", color="#4c72b0", label="mean local training loss")
    bad = rounds[rounds.get("rejected", 0) > 0] if "rejected" in rounds else rounds.iloc[0:0]
    if len(bad):
        ax.scatter(bad["round"], bad["train_loss"], color="#c44e52", zorder=3, label="round with rejected updates")
    ax.set_xlabel("round")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=8)
    ax.set_title("Federated rounds")
    return _save(fig, path)
