"""Run ADMET-AI 2.0.1 on a SMILES file and report timing + this process's peak RSS as JSON.

Runs inside the ADMET-AI venv (/work/peers/admetai) as a subprocess of bench/admet_throughput.py:
    /work/peers/admetai/bin/python bench/peers/admetai_predict.py SMILES_FILE OUT_JSON [--preds OUT_CSV]
Model weights are read from the installed package (admet_ai/resources/models); the JSON records the
files opened so the benchmark can show nothing was downloaded.
"""
from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

#: ADMET-AI's RDKit-computed physicochemical columns (not learned models)
PHYSCHEM = {"molecular_weight", "logP", "hydrogen_bond_acceptors", "hydrogen_bond_donors", "Lipinski", "QED",
            "stereo_centers", "tpsa"}
#: ADMET-AI's RDKit substructure-alert columns (not learned models either; counted with the physchem columns)
ALERTS = {"PAINS_alert", "BRENK_alert", "NIH_alert"}


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("smiles_file")
    parser.add_argument("out_json")
    parser.add_argument("--preds", default=None)
    args = parser.parse_args()
    smiles = [line.split()[0] for line in Path(args.smiles_file).read_text().splitlines() if line.strip()]
    t0 = time.perf_counter()
    import admet_ai
    from admet_ai import ADMETModel
    from admet_ai.constants import DEFAULT_ADMET_PATH, DEFAULT_DRUGBANK_PATH, DEFAULT_MODELS_DIR

    model = ADMETModel()
    t_load = time.perf_counter() - t0
    t1 = time.perf_counter()
    preds = model.predict(smiles=smiles)
    t_pred = time.perf_counter() - t1
    if args.preds:
        preds.to_csv(args.preds)
    pkg = Path(admet_ai.__file__).parent
    # what ADMET-AI predicts: model endpoints (TDC sets) + RDKit physchem, each with a DrugBank percentile column
    properties = [c for c in preds.columns if not str(c).endswith("_drugbank_approved_percentile")]
    physchem = [c for c in properties if c in PHYSCHEM or c in ALERTS]
    models_dir = Path(DEFAULT_MODELS_DIR)
    out = {
        "n_input": len(smiles), "n_output_rows": int(len(preds)), "n_columns": int(preds.shape[1]),
        "n_model_endpoints": len(properties) - len(physchem), "n_physchem": len(physchem),
        "model_endpoints": [c for c in properties if c not in PHYSCHEM and c not in ALERTS],
        "n_structural_alerts": len([c for c in properties if c in ALERTS]),
        "load_seconds": t_load, "predict_seconds": t_pred,
        "mol_per_s_predict": len(smiles) / t_pred, "mol_per_s_incl_load": len(smiles) / (t_load + t_pred),
        "peak_rss_mb": _vm_hwm_mb(),  # this process's own high-water mark (ru_maxrss would include the parent's at fork)
        "models_dir": str(models_dir), "models_dir_inside_package": str(models_dir).startswith(str(pkg)),
        "model_files": sorted(str(p.relative_to(models_dir)) for p in models_dir.rglob("*.pt")),
        "drugbank_path": str(DEFAULT_DRUGBANK_PATH), "admet_path": str(DEFAULT_ADMET_PATH),
    }
    Path(args.out_json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
