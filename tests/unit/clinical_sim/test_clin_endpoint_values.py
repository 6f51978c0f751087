"""The trial model's ADMET features are the endpoint point predictions only: never the domain columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clinical_sim.admet_link import endpoint_values


def test_endpoint_values_keeps_point_predictions_and_drops_domain_and_interval_columns():
    frame = pd.DataFrame({
        "input": ["CCO", "c1ccccc1"], "smiles": ["CCO", "c1ccccc1"], "status": ["ok", "ok"],
        "ad_status": ["inside", "outside"], "ad_similarity": [0.8, 0.2], "ad_flags": ["", "large"],
        "duplicate_of": pd.array([pd.NA, 0], dtype="Int64"),
        "hERG": [0.1, 0.9], "hERG_std": [0.0, 0.0], "hERG_lower": [np.nan, np.nan],
        "VDss_Lombardo": [1.2, 3.4], "VDss_Lombardo_pct_approved": [10.0, 90.0],
        "VDss_Lombardo_in_domain": pd.array([True, False], dtype="boolean"),
    })
    out = endpoint_values(frame)
    assert list(out.columns) == ["hERG", "VDss_Lombardo"]
    assert out["VDss_Lombardo"].tolist() == [1.2, 3.4]
