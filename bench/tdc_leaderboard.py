"""Published TDC ADMET leaderboard top-1 per set: context for the benchmark table, never pass/fail.

Values: the "TDC Leaderboard SoTA Result" column of graphcore-research/minimol's README
(commit d7abc98, "TOP5 models from the TDC leaderboard (as of June 2024)"), mean +- std over
TDC's 5 seeds. Method names: matched to the same mean +- std in TDC-leaderboard records
(tdcommons.ai/benchmark/admet_group/<set>/) as quoted by a public method-comparison page, and for
Bioavailability_Ma by the TDC leaderboard page mirrored in AI4Science101/AI4Science101.github.io
(commit 3db9a3e). Where no record with that exact value was found the method stays ``None``
("method not verified"); no number here was typed from memory. The live leaderboard has moved
since June 2024 (e.g. Caco2_Wang: CaliciBoost 0.256 +- 0.006, 2025), so these are a snapshot.

Citations: MapLight / MapLight + GNN: J. H. Notwell, M. W. Wood, "ADMET property prediction
through combinations of molecular fingerprints", arXiv:2310.00174 (2023). Chemprop-RDKit:
K. Yang et al., J. Chem. Inf. Model. 59, 3370 (2019) (TDC submission by K. Swanson). SimGCN:
Katana Graph, github.com/KatanaGraph/SimGCN-TDC (report in that repository).
"""

from __future__ import annotations

LEADERBOARD_SOURCE = ("graphcore-research/minimol README@d7abc98 (TDC leaderboard top values as of June 2024); "
                      "method names matched to TDC leaderboard records; see bench/tdc_leaderboard.py")

_MAPLIGHT = "Notwell & Wood, arXiv:2310.00174 (2023)"
_CHEMPROP = "Yang et al., J. Chem. Inf. Model. 59, 3370 (2019)"


def _top(value: float, std: float, method: str | None = None, citation: str | None = None) -> dict:
    return {"value": value, "std": std, "method": method or "method not verified", "citation": citation}


LEADERBOARD_TOP1: dict[str, dict] = {
    "caco2_wang": _top(0.276, 0.005, "MapLight", _MAPLIGHT),
    "hia_hou": _top(0.989, 0.001, "MapLight + GNN", _MAPLIGHT),
    "pgp_broccatelli": _top(0.938, 0.002, "MapLight + GNN", _MAPLIGHT),
    "bioavailability_ma": _top(0.748, 0.033, "SimGCN", "Katana Graph, github.com/KatanaGraph/SimGCN-TDC"),
    "lipophilicity_astrazeneca": _top(0.467, 0.006, "Chemprop-RDKit", _CHEMPROP),
    "solubility_aqsoldb": _top(0.761, 0.025, "Chemprop-RDKit", _CHEMPROP),
    "bbb_martins": _top(0.916, 0.001, "MapLight", _MAPLIGHT),
    "ppbr_az": _top(7.526, 0.106, "MapLight + GNN", _MAPLIGHT),
    "vdss_lombardo": _top(0.713, 0.007, "MapLight + GNN", _MAPLIGHT),
    "cyp2c9_veith": _top(0.859, 0.001, "MapLight + GNN", _MAPLIGHT),
    "cyp2d6_veith": _top(0.790, 0.001, "MapLight + GNN", _MAPLIGHT),
    "cyp3a4_veith": _top(0.916, 0.000, "MapLight + GNN", _MAPLIGHT),
    "cyp2c9_substrate_carbonmangels": _top(0.441, 0.033),
    "cyp2d6_substrate_carbonmangels": _top(0.736, 0.024),
    "cyp3a4_substrate_carbonmangels": _top(0.662, 0.031),
    "half_life_obach": _top(0.562, 0.008, "MapLight", _MAPLIGHT),
    "clearance_hepatocyte_az": _top(0.498, 0.009, "MapLight + GNN", _MAPLIGHT),
    "clearance_microsome_az": _top(0.630, 0.010, "MapLight + GNN", _MAPLIGHT),
    "ld50_zhu": _top(0.552, 0.009),
    "herg": _top(0.880, 0.002, "MapLight + GNN", _MAPLIGHT),
    "ames": _top(0.871, 0.002),
    "dili": _top(0.925, 0.005),
}
