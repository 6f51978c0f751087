"""The configuration ``fedadmet admet train`` uses with no options is the chosen default, and it learns.

The default (``admet.config.CLI_DEFAULTS``) was chosen by mean rank on valid folds
(``bench/default_choice.py``). Here it is trained exactly as the CLI resolves it, on a real slice of
the embedded Biogen set (the table's own train/test split), and must beat trivial predictors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from admet.config import CLI_DEFAULTS, ModelConfig
from admet.fit import prepare_task_data, train_bundle
from pipelines.catalog import datasets_dir


def _cli_config(**overrides) -> ModelConfig:
    from flows.cli.admet_cmd import _model_config

    return _model_config(None, **overrides)


def test_cli_resolves_the_chosen_default_and_options_still_win():
    cfg = _cli_config()
    for key, value in CLI_DEFAULTS.items():
        assert getattr(cfg, key) == value
    assert _cli_config(model="mtnn").model == "mtnn"
    # the library-level defaults (federation, tuning, clinical model) are left as they were
    assert ModelConfig().model == "mtnn"


@pytest.fixture(scope="module")
def biogen_slice() -> pd.DataFrame:
    table = pd.read_csv(datasets_dir() / "biogen_adme" / "biogen_adme.csv.gz", dtype={"split": str})
    rows = table[table["endpoint"].isin(["HLM_CLint", "MDR1_ER"])]
    parts = []
    for (_endpoint, split), grp in rows.groupby(["endpoint", "split"]):
        parts.append(grp.sample(n=min(len(grp), 260 if split == "train" else 110), random_state=0))
    return pd.concat(parts, ignore_index=True)


@pytest.mark.slow
def test_default_beats_trivial_predictors_on_real_biogen_slice(biogen_slice):
    td = prepare_task_data(biogen_slice)
    bundle = train_bundle(td, _cli_config(), n_jobs=1, with_context=False)
    assert bundle.config.model == CLI_DEFAULTS["model"]
    assert len(bundle.ensemble.members) == CLI_DEFAULTS["ensemble"]
    test = bundle.metrics["test"]
    assert set(test) == set(td.task_names) and len(test) == 2
    train_rows = biogen_slice[biogen_slice["split"] == "train"]
    test_rows = biogen_slice[biogen_slice["split"] == "test"]
    for endpoint, m in test.items():
        y_test = test_rows.loc[test_rows["endpoint"] == endpoint, "value"].to_numpy(float)
        mean_mae = float(np.mean(np.abs(y_test - train_rows.loc[train_rows["endpoint"] == endpoint, "value"].mean())))
        # a constant (the training mean) has Pearson 0; the default must rank and fit far better
        assert m["pearson"] > 0.45, (endpoint, m)
        assert m["mae"] < 0.85 * mean_mae, (endpoint, m, mean_mae)
