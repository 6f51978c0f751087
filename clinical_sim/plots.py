"""Figures of the virtual trials and the design study (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from clinical_sim import pk as pkm  # noqa: E402
from clinical_sim.design import TrialDesign  # noqa: E402
from clinical_sim.simulate import emax_effect  # noqa: E402


def plot_exposure(patients: pd.DataFrame, design: TrialDesign, path: str | Path, n_curves: int = 40) -> Path:
    """Steady-state concentration-time curves of some patients, and the distribution of Cavg."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    tau, dose = design.dosing.interval_h, design.dosing.dose_mg
    t = np.linspace(0, tau, 200)
    sub = patients.head(n_curves)
    for _, p in sub.iterrows():
        ax1.plot(t, pkm.concentration_ss(t, dose, tau, p["ka_h"], p["cl_l_h"], p["v_l"],
                                         p["auc_ss"] * p["cl_l_h"] / dose), lw=0.7, alpha=0.6)
    ax1.set_xlabel("time after dose at steady state (h)")
    ax1.set_ylabel("concentration (mg/L)")
    ax1.set_title(f"{dose:g} mg every {tau:g} h")
    ax2.hist(patients["cavg_ss"], bins=40, color="tab:blue", alpha=0.8)
    ax2.axvline(design.efficacy.ec50_mg_l, color="k", ls="--", label="EC50")
    ax2.set_xlabel("steady-state Cavg (mg/L)")
    ax2.set_ylabel("patients")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_response(patients: pd.DataFrame, design: TrialDesign, path: str | Path) -> Path:
    """Individual responses and the Emax curve against exposure; AE patients marked."""
    eff = design.efficacy
    fig, ax = plt.subplots(figsize=(6, 4))
    ae = patients["ae"].astype(bool)
    ax.scatter(patients.loc[~ae, "cavg_ss"], patients.loc[~ae, "response"], s=6, alpha=0.4, label="no AE")
    ax.scatter(patients.loc[ae, "cavg_ss"], patients.loc[ae, "response"], s=8, alpha=0.7, c="tab:red", label="AE")
    c = np.geomspace(max(patients["cavg_ss"].min(), 1e-4), patients["cavg_ss"].max() * 1.2, 200)
    ax.plot(c, eff.e0 + emax_effect(c, eff.emax, eff.ec50_mg_l, eff.hill), c="k", label="Emax model")
    ax.set_xscale("log")
    ax.set_xlabel("steady-state Cavg (mg/L)")
    ax.set_ylabel("response")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_pareto(trials: pd.DataFrame, pareto: pd.DataFrame, chosen: dict, path: str | Path) -> Path:
    """All designs (infeasible greyed), the Pareto front, and the chosen design."""
    fig, ax = plt.subplots(figsize=(6, 4))
    feas = trials["feasible"].astype(bool)
    ax.scatter(trials.loc[~feas, "total_n"], trials.loc[~feas, "p_success"], c="lightgrey", s=12,
               label="AE constraint broken")
    ax.scatter(trials.loc[feas, "total_n"], trials.loc[feas, "p_success"], c="tab:blue", s=12, label="feasible")
    ax.step(pareto["total_n"], pareto["p_success"], where="post", c="tab:orange", label="Pareto front")
    ax.scatter([chosen["total_n"]], [chosen["p_success"]], marker="*", s=200, c="tab:red", label="chosen")
    ax.set_xlabel("total sample size")
    ax.set_ylabel("P(success)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
