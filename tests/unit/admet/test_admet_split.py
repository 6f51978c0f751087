"""Split resolution: a table's split column wins; calibration folds are carved per endpoint."""

import numpy as np

from admet.fit import prepare_task_data, resolve_split
from pipelines.catalog import load_embedded


def _td():
    long_df = load_embedded(["solubility", "rPPB"])
    keep = long_df.groupby("endpoint").head(150)
    return prepare_task_data(keep)


def test_table_split_wins_and_each_endpoint_gets_a_calibration_fold():
    td = _td()
    split, how = resolve_split(td, "scaffold", seed=0)
    assert "split column" in how
    given = np.asarray(td.split)
    assert np.all(split[given == "test"] == "test")           # the table's test molecules stay test
    assert np.all(np.isin(split[given == "train"], ["train", "valid"]))
    for j in range(len(td.tasks)):
        labelled = ~np.isnan(td.Y[:, j])
        assert (labelled & (split == "valid")).sum() >= 5, td.tasks[j].name


def test_ignore_table_split_gives_a_per_endpoint_scaffold_split_without_shared_molecules():
    from pipelines.split import scaffold_of

    td = _td()
    split, how = resolve_split(td, "scaffold", seed=3, ignore_table_split=True)
    assert how.startswith("scaffold split")
    for j in range(len(td.tasks)):
        labelled = ~np.isnan(td.Y[:, j])
        assert set(split[labelled]) == {"train", "valid", "test"}
    scaffolds = np.array([scaffold_of(s) for s in td.smiles])
    group = np.argmin(np.where(~np.isnan(td.Y), (~np.isnan(td.Y)).sum(0), 10**9), axis=1)
    for g in np.unique(group):  # within an endpoint group no scaffold spans two folds
        rows = group == g
        for fold in ("valid", "test"):
            assert not set(scaffolds[rows & (split == fold)]) & set(scaffolds[rows & (split == "train")])
    again, _ = resolve_split(td, "scaffold", seed=3, ignore_table_split=True)
    np.testing.assert_array_equal(split, again)
