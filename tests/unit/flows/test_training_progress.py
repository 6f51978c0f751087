"""Progress of ``admet train``: the library reports every epoch / boosting round as an
``admet.progress`` event, the CLI's bar counts members x steps (issue 13 §2)."""

from __future__ import annotations

import logging

import pytest


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.units: list[tuple[str, int, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.units.append((record.unit, record.step, record.steps))


@pytest.fixture(scope="module")
def small_task_data():
    from admet.fit import prepare_task_data
    from pipelines.catalog import load_embedded

    long_df = load_embedded(["solubility", "HLM_CLint"])
    keep = long_df["compound_id"].drop_duplicates().head(120)
    return prepare_task_data(long_df[long_df["compound_id"].isin(keep)])


@pytest.mark.parametrize("model, per_member", [("mtnn", 3), ("lgbm", 2 * 4)])
def test_training_reports_every_epoch_or_round_and_the_cli_bar_totals_match(model, per_member, small_task_data):
    from admet.config import ModelConfig
    from admet.fit import train_bundle
    from flows.cli.admet_cmd import _steps_per_member

    cfg = ModelConfig.build(model=model, featurizer="morgan_count", hidden=(16,), epochs=3, patience=0, ensemble=2,
                            batch_size=64, seed=0, lgbm_n_estimators=4)
    events, logger = _Events(), logging.getLogger("admet.progress")
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(events)
    members: list[int] = []
    try:
        train_bundle(small_task_data, cfg, progress=lambda done, total: members.append(done), n_jobs=1)
    finally:
        logger.removeHandler(events)
        logger.setLevel(saved)
    assert members == [1, 2]
    assert _steps_per_member(cfg, len(small_task_data.tasks))[0] == per_member
    assert len(events.units) == cfg.ensemble * per_member
    unit = "epoch" if model == "mtnn" else "round"
    assert {u for u, _, _ in events.units} == {unit}
    assert max(step for _, step, _ in events.units) == (3 if model == "mtnn" else 4)
