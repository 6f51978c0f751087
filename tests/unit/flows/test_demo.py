"""The main job at toy size: every stage runs for real (Flower simulation included) and the report
links them. The full-size run is ``fedadmet demo`` (``make demo``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from flows.demo import DemoConfig, run_demo


@pytest.mark.slow
def test_small_demo_runs_every_stage_and_writes_the_report(prefect_harness, tiny_library, tmp_path):
    cfg = DemoConfig(out_dir=tmp_path, n_partners=3, rounds=1, local_epochs=1, hidden=(32,),
                     endpoints=("solubility", "HLM_CLint"), library=tiny_library, baselines=False, num_cpus=1,
                     featurizer="morgan_count", top_n=5, lab_pool=60, lab_trials=2, lab_candidates=12,
                     clinical_top=2, clinical_designs=3)
    seen = []
    result = run_demo(cfg, on_stage=lambda stage, status: seen.append((stage, status)))
    assert {k: v["status"] for k, v in result.stages.items()} == {
        "data": "done", "federation": "done", "screening": "done", "lab": "done", "clinical": "done",
        "report": "done"}
    assert ("federation", "start") in seen and ("screening", "done") in seen
    assert len(result.manifest) == 3
    assert set(result.partner_table["partner"]) == {"partner_00", "partner_01", "partner_02"}
    assert result.screening_summary["n_input"] == 14 and result.screening_summary["n_rejected"] == 2
    ranked = pd.read_csv(tmp_path / "screening" / "ranked.csv")
    assert len(ranked) == 12
    text = result.report.read_text()
    assert "## Partners" in text and "## Screening" in text and "## Federated training" in text
    assert (tmp_path / "config.json").exists()
    # every stage says where its outputs are, and they exist
    for stage, info in result.stages.items():
        assert Path(info["outputs"]).exists(), (stage, info)
    # the experiment loop proposes its batch from the screened (ranked) compounds, none twice
    proposed = pd.read_csv(tmp_path / "lab" / "proposed_batch.csv")
    assert 1 <= len(proposed) <= 12 and proposed["smiles"].is_unique
    assert set(proposed["smiles"]) <= set(ranked["smiles"])
    assert result.lab_summary["study_trials"].get("complete", 0) + result.lab_summary["study_trials"].get(
        "pruned", 0) == 2
    # the clinical module simulated the top-2 screened compounds, in ranking order
    trials = pd.read_csv(tmp_path / "clinical" / "virtual_trials.csv")
    assert trials["smiles"].tolist() == ranked["smiles"].head(2).tolist()
    assert trials["p_success"].between(0, 1).all() and (trials["ci95_low"] <= trials["p_success"]).all()
    assert "## Experiment loop" in text and "## Clinical module" in text
