"""Known-drug sanity checks of a model bundle (default: the shipped base model).

Issue 11 asks that, with the shipped model, BBB ranks CNS drugs (diazepam, haloperidol,
carbamazepine, caffeine) above atenolol, sulfasalazine, loperamide and cetirizine; hERG scores
terfenadine, astemizole, cisapride and dofetilide above metformin and aspirin; AMES flags the known
mutagens 2-aminoanthracene, 4-nitroquinoline N-oxide and aflatoxin B1. Every pair (expected-high
drug, expected-low drug) is a check that passes when the high one scores strictly higher; for AMES
a mutagen also has to be *flagged* (calibrated probability >= 0.5) and to score above three
Ames-negative drugs (aspirin, metformin, caffeine). A failure is a finding, reported as such, not
hidden; each row also gives the drug's label in that endpoint's embedded data (matched by InChIKey
connectivity) and the fold the model's training run put it in: a pass on a drug the model trained
on means less.

SMILES were written by hand and checked against each drug's molecular formula (``FORMULA``;
``check_structures`` fails the run if one is wrong).

    .venv/bin/python bench/known_drugs.py [--model BUNDLE] [--out bench/results]

writes ``known_drugs.json`` and ``known_drugs.md`` (the table) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: name -> (SMILES, molecular formula it must have)
DRUGS: dict[str, tuple[str, str]] = {
    "diazepam": ("CN1C(=O)CN=C(c2ccccc2)c2cc(Cl)ccc21", "C16H13ClN2O"),
    "haloperidol": ("O=C(CCCN1CCC(O)(c2ccc(Cl)cc2)CC1)c1ccc(F)cc1", "C21H23ClFNO2"),
    "carbamazepine": ("NC(=O)N1c2ccccc2C=Cc2ccccc21", "C15H12N2O"),
    "caffeine": ("Cn1cnc2c1c(=O)n(C)c(=O)n2C", "C8H10N4O2"),
    "atenolol": ("CC(C)NCC(O)COc1ccc(CC(N)=O)cc1", "C14H22N2O3"),
    "sulfasalazine": ("OC(=O)c1cc(N=Nc2ccc(cc2)S(=O)(=O)Nc2ccccn2)ccc1O", "C18H14N4O5S"),
    "loperamide": ("CN(C)C(=O)C(CCN1CCC(O)(c2ccc(Cl)cc2)CC1)(c1ccccc1)c1ccccc1", "C29H33ClN2O2"),
    "cetirizine": ("OC(=O)COCCN1CCN(C(c2ccccc2)c2ccc(Cl)cc2)CC1", "C21H25ClN2O3"),
    "terfenadine": ("CC(C)(C)c1ccc(cc1)C(O)CCCN1CCC(CC1)C(O)(c1ccccc1)c1ccccc1", "C32H41NO2"),
    "astemizole": ("COc1ccc(CCN2CCC(CC2)Nc2nc3ccccc3n2Cc2ccc(F)cc2)cc1", "C28H31FN4O"),
    "cisapride": ("COC1CN(CCCOc2ccc(F)cc2)CCC1NC(=O)c1cc(Cl)c(N)cc1OC", "C23H29ClFN3O4"),
    "dofetilide": ("CN(CCOc1ccc(NS(C)(=O)=O)cc1)CCc1ccc(NS(C)(=O)=O)cc1", "C19H27N3O5S2"),
    "metformin": ("CN(C)C(=N)NC(=N)N", "C4H11N5"),
    "aspirin": ("CC(=O)Oc1ccccc1C(=O)O", "C9H8O4"),
    "2-aminoanthracene": ("Nc1ccc2cc3ccccc3cc2c1", "C14H11N"),
    "4-nitroquinoline N-oxide": ("[O-][N+](=O)c1cc[n+]([O-])c2ccccc12", "C9H6N2O3"),
    "aflatoxin B1": ("COC1=C2C3=C(C(=O)CC3)C(=O)OC2=C2C4C=COC4OC2=C1", "C17H12O6"),
}

#: (check, endpoint, expected high, expected low, flag threshold for the high ones or None)
CHECKS: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...], float | None], ...] = (
    ("BBB: CNS drugs above non-CNS drugs", "BBB_Martins",
     ("diazepam", "haloperidol", "carbamazepine", "caffeine"),
     ("atenolol", "sulfasalazine", "loperamide", "cetirizine"), None),
    ("hERG: known blockers above metformin / aspirin", "hERG",
     ("terfenadine", "astemizole", "cisapride", "dofetilide"), ("metformin", "aspirin"), None),
    ("AMES: known mutagens flagged, above Ames-negative drugs", "AMES",
     ("2-aminoanthracene", "4-nitroquinoline N-oxide", "aflatoxin B1"), ("aspirin", "metformin", "caffeine"), 0.5),
)


def check_structures() -> None:
    """Every SMILES parses and has its drug's molecular formula (a typo would test the wrong molecule)."""
    from rdkit import Chem
    from rdkit.Chem.rdMolDescriptors import CalcMolFormula

    for name, (smiles, formula) in DRUGS.items():
        mol = Chem.MolFromSmiles(smiles)
        got = CalcMolFormula(mol) if mol is not None else None
        if got != formula:
            raise ValueError(f"{name}: SMILES {smiles!r} gives {got}, expected {formula}")


def training_labels(endpoints: list[str]) -> dict[str, dict[str, float]]:
    """Per endpoint: InChIKey connectivity block -> mean embedded label of the molecules with it."""
    from rdkit import Chem

    from pipelines.catalog import load_embedded

    long_df = load_embedded(endpoints)
    sums: dict[str, dict[str, list[float]]] = {e: {} for e in endpoints}
    for endpoint, smiles, value in zip(long_df["endpoint"].astype(str), long_df["smiles"].astype(str),
                                       long_df["value"], strict=True):
        mol = Chem.MolFromSmiles(smiles)
        if mol is not None:
            sums[endpoint].setdefault(Chem.MolToInchiKey(mol).split("-")[0], []).append(float(value))
    return {e: {k: sum(v) / len(v) for k, v in d.items()} for e, d in sums.items()}


def _folds(model_dir: Path) -> dict[str, str]:
    """Connectivity block -> fold of the model's training run (empty without ``split.npz``)."""
    from admet.shipped import SPLIT_FILE, _read_split_file

    if not (Path(model_dir) / SPLIT_FILE).is_file():
        return {}
    keys, folds, _ = _read_split_file(Path(model_dir) / SPLIT_FILE)
    return {str(k).split("-")[0]: f for k, f in zip(keys, folds, strict=True)}


def evaluate(bundle, labels: dict[str, dict[str, float]] | None = None, folds: dict[str, str] | None = None) -> dict:
    """Scores, ranks and pass/fail of every check for a loaded :class:`admet.bundle.ModelBundle`."""
    from rdkit import Chem

    names = list(DRUGS)
    preds = bundle.predict_smiles([DRUGS[n][0] for n in names])
    preds.index = names
    keys = {n: Chem.MolToInchiKey(Chem.MolFromSmiles(DRUGS[n][0])).split("-")[0] for n in names}
    checks = []
    for title, endpoint, high, low, threshold in CHECKS:
        if endpoint not in bundle.task_names:
            checks.append({"check": title, "endpoint": endpoint, "status": "endpoint not in the model",
                           "drugs": [], "pairs": [], "n_pairs": 0, "n_pass": 0})
            continue
        drugs = [*high, *low]
        scores = {d: float(preds.loc[d, endpoint]) for d in drugs}
        order = sorted(drugs, key=lambda d: -scores[d])
        seen = (labels or {}).get(endpoint, {})
        rows = [{"drug": d, "expected": "high" if d in high else "low", "score": scores[d],
                 "rank": order.index(d) + 1, "in_training_data": keys[d] in seen,
                 "data_label": seen.get(keys[d]), "fold": (folds or {}).get(keys[d], "") if keys[d] in seen else "",
                 **({"flagged": scores[d] >= threshold} if threshold is not None else {})} for d in drugs]
        pairs = [{"high": h, "low": lo, "pass": bool(scores[h] > scores[lo])} for h in high for lo in low]
        flags = [{"drug": h, "pass": bool(scores[h] >= threshold)} for h in high] if threshold is not None else []
        n_pass = sum(p["pass"] for p in pairs) + sum(f["pass"] for f in flags)
        n_all = len(pairs) + len(flags)
        checks.append({"check": title, "endpoint": endpoint, "threshold": threshold, "drugs": rows,
                       "pairs": pairs, "flags": flags, "n_pairs": n_all, "n_pass": n_pass,
                       "status": "pass" if n_pass == n_all else f"FAIL ({n_all - n_pass} of {n_all} failed)"})
    return {"checks": checks, "n_pass": sum(c["n_pass"] for c in checks),
            "n_checks": sum(c["n_pairs"] for c in checks)}


def to_markdown(result: dict) -> str:
    lines = [f"# Known-drug sanity checks ({result.get('model', 'model')})", "",
             f"{result['n_pass']} of {result['n_checks']} pair/flag checks pass. A pair passes when the "
             "expected-high drug scores strictly higher; an AMES flag passes at P >= 0.5. "
             "`data label` = the structure's label in that endpoint's embedded data (mean of replicates; "
             "`-`: not in it); `fold` = where the model's training run put the molecule (`train`: the model "
             "learnt that label; `test` / `valid`: it did not train on it).", ""]
    for c in result["checks"]:
        lines += [f"## {c['check']} (`{c['endpoint']}`): {c['status']}", ""]
        if not c["drugs"]:
            continue
        lines += ["| drug | expected | score | rank | data label | fold |" + (" flagged |" if c.get("threshold") else ""),
                  "|---|---|---|---|---|---|" + ("---|" if c.get("threshold") else "")]
        for r in c["drugs"]:
            flag = f" {'yes' if r['flagged'] else 'no'} |" if "flagged" in r else ""
            label = "-" if r["data_label"] is None else f"{r['data_label']:g}"
            lines.append(f"| {r['drug']} | {r['expected']} | {r['score']:.3f} | {r['rank']} | {label} | "
                         f"{r['fold'] or '-'} |{flag}")
        failed = [f"{p['high']} <= {p['low']}" for p in c["pairs"] if not p["pass"]]
        failed += [f"{f['drug']} not flagged" for f in c.get("flags", []) if not f["pass"]]
        lines += ["", "Failed: " + ("; ".join(failed) if failed else "none"), ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="bundle folder (default: the shipped base model)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args(argv)
    import pipelines

    pipelines.configure()
    from admet.bundle import load_bundle
    from admet.shipped import resolve_model_dir

    check_structures()
    model_dir, shipped = resolve_model_dir(args.model)
    bundle = load_bundle(model_dir)
    result = evaluate(bundle, training_labels([c[1] for c in CHECKS if c[1] in bundle.task_names]),
                      _folds(model_dir))
    manifest = model_dir / "SHIPPED.json"
    result["model"] = (f"{json.loads(manifest.read_text())['name']} {json.loads(manifest.read_text())['version']}"
                       if shipped and manifest.is_file() else str(model_dir))
    result["command"] = "python bench/known_drugs.py" + (f" --model {args.model}" if args.model else "")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "known_drugs.json").write_text(json.dumps(result, indent=2) + "\n")
    md = to_markdown(result)
    (args.out / "known_drugs.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
