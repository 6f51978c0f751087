"""``fedadmet federate``'s simulated partners go through the node's own preparation: the partition writes
raw partner tables and the simulated operator's catalog, each partner prepares its table with
``prepare_node_table``, and the keyed scaffold folds agree across partners (one scaffold, one fold)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from federation import task
from pipelines.partner_data import (
    CONSORTIUM_CATALOG,
    NodeDataSettings,
    load_long_table,
    prepare_node_data,
    prepare_partition,
)
from pipelines.split import scaffolds_of, series_key


def test_simulated_partners_prepare_like_nodes_and_folds_agree(tmp_path):
    table = load_long_table(endpoints=("HLM_CLint", "solubility"), max_rows=900, seed=1)
    extra = table.head(40).assign(endpoint="my_assay", unit="nM", value=np.arange(40, dtype=float))
    out = tmp_path / "partners"
    prepare_partition(pd.concat([table, extra], ignore_index=True), out, n_partners=3, alpha=1.0, seed=0,
                      min_rows=30)
    assert (out / CONSORTIUM_CATALOG).is_file()
    fold_of: dict[str, set[str]] = {}
    partners_of: dict[str, set[str]] = {}
    for folder in sorted(out.glob("partner_*")):
        prep = prepare_node_data(folder, tmp_path / "prep" / folder.name,
                                 NodeDataSettings(catalog_path=out / CONSORTIUM_CATALOG))
        raw_rows = len(pd.read_csv(folder / "data.csv"))
        assert prep.summary["n_input"] == raw_rows
        assert prep.summary["n_accepted"] + prep.summary["n_rejected"] == raw_rows
        # the table's own endpoint is in the simulated catalog, so it is not "unmapped"
        assert "my_assay" not in prep.summary["unmapped_endpoints"]
        rows = prep.prepared
        smiles = rows["smiles"].tolist()
        for scaffold, mol, fold in zip(scaffolds_of(smiles), smiles, rows["fold"], strict=True):
            key = series_key(scaffold, mol)  # a series' scaffold, or the molecule when its scaffold is trivial
            fold_of.setdefault(key, set()).add(fold)
            partners_of.setdefault(key, set()).add(folder.name)
        # the ClientApp's loader trains on exactly these folds
        data = task.load_partner(folder, folder.name, "morgan_count", None, tmp_path / "work" / folder.name)
        fold_by_smiles = dict(zip(rows["smiles"], rows["fold"], strict=False))
        assert len(data.split) > 0
        assert all(fold_by_smiles[s] == f for s, f in zip(data.smiles, data.split, strict=True))
    across = [s for s, names in partners_of.items() if len(names) > 1]
    assert across, "no scaffold is shared by two partners: the consistency check would be empty"
    assert all(len(fold_of[s]) == 1 for s in fold_of)
