"""The one catalog: every vendored endpoint described, aliases resolved, one copy per assay, no fold leak."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.catalog import datasets_dir, endpoint_aliases, load_catalog, load_embedded, resolve_endpoints
from pipelines.errors import InputError
from pipelines.standardize import standardize_many

TDC_GROUP = {
    "Caco2_Wang", "HIA_Hou", "Pgp_Broccatelli", "Bioavailability_Ma", "Lipophilicity_AstraZeneca",
    "Solubility_AqSolDB", "BBB_Martins", "PPBR_AZ", "VDss_Lombardo", "CYP2C9_Veith", "CYP2D6_Veith",
    "CYP3A4_Veith", "CYP2C9_Substrate_CarbonMangels", "CYP2D6_Substrate_CarbonMangels",
    "CYP3A4_Substrate_CarbonMangels", "Half_Life_Obach", "Clearance_Hepatocyte_AZ", "Clearance_Microsome_AZ",
    "LD50_Zhu", "hERG", "AMES", "DILI",
}
TOX21 = {"NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE",
         "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"}


@pytest.fixture(scope="module")
def catalog() -> pd.DataFrame:
    return load_catalog()


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return load_embedded()


def test_catalog_describes_every_vendored_endpoint(catalog, table):
    names = set(catalog["endpoint"])
    assert TDC_GROUP | TOX21 | {"CYP1A2_Veith", "CYP2C19_Veith", "Skin_Reaction", "Carcinogens_Lagunin",
                                "ClinTox", "HLM_CLint", "solubility", "toxcast_clean"} <= names
    assert len(names) == len(catalog) == 47
    counts = table.groupby("endpoint").size()
    assert (catalog.set_index("endpoint")["count"] == counts.reindex(catalog["endpoint"]).to_numpy()).all()
    for column in ("unit", "licence", "source", "split_kind", "better"):
        assert (catalog[column] != "").all(), column
    assert set(catalog["transform"]) == {"none", "log10"}
    group = catalog[catalog["endpoint"].isin(TDC_GROUP)]
    assert set(group["split_kind"]) == {"official"} and set(group["metric"]) == {"MAE", "Spearman", "AUROC", "AUPRC"}
    assert (catalog.loc[~catalog["endpoint"].isin(TDC_GROUP), "metric"] == "").all()
    az = catalog[catalog["endpoint"].str.endswith(("_AZ", "_AstraZeneca"))]
    assert len(az) == 4 and az["licence"].str.contains("CC BY-SA 3.0").all()


def test_official_split_is_kept_verbatim(table, catalog):
    official = catalog.loc[catalog["split_kind"] == "official", "endpoint"]
    tdc = table[table["endpoint"].isin(official) & (table["source"] == "tdc_admet")]
    assert set(tdc["split"]) == {"train_val", "test"}
    caco = tdc[tdc["endpoint"] == "Caco2_Wang"]["split"].value_counts()
    assert (caco["train_val"], caco["test"]) == (728, 182)  # TDC's admet_group files
    none = catalog.loc[catalog["split_kind"] == "none", "endpoint"]
    assert set(table.loc[table["endpoint"].isin(none), "split"]) == {""}


def test_hint_names_resolve_to_the_tdc_endpoint(catalog):
    aliases = endpoint_aliases(catalog)
    hint_names = {"bioavailability": "Bioavailability_Ma", "bbb": "BBB_Martins", "cyp2c19_inhib": "CYP2C19_Veith"}
    assert {k: aliases[k] for k in hint_names} == hint_names
    assert resolve_endpoints(["bbb", "BBB_Martins", "HLM_CLint"]) == ["BBB_Martins", "HLM_CLint"]
    rows = load_embedded(["bbb", "bioavailability"])
    assert set(rows["endpoint"]) == {"BBB_Martins", "Bioavailability_Ma"}
    with pytest.raises(InputError, match="unknown endpoint"):
        load_embedded(["no_such_endpoint"])
    hint = pd.read_csv(datasets_dir() / "hint_admet" / "hint_admet.csv.gz")
    assert not set(endpoint_aliases(catalog)) & set(hint["endpoint"])  # the copies are gone


def _connectivity(smiles: pd.Series) -> np.ndarray:
    return np.array([s.inchikey[:14] if s.ok else "" for s in standardize_many(smiles.tolist())], dtype=object)


@pytest.mark.parametrize("endpoint", ["BBB_Martins", "CYP2C19_Veith", "Bioavailability_Ma"])
def test_no_molecule_in_two_copies_of_an_assay(endpoint):
    """Rows merged from HINT never share an InChIKey connectivity block with TDC's rows of the same assay,
    so no molecule is in a training fold through one copy and in TDC's test through the other."""
    rows = load_embedded([endpoint])
    keys = _connectivity(rows["smiles"])
    tdc, hint = (rows["source"] == "tdc_admet").to_numpy(), (rows["source"] == "hint_admet").to_numpy()
    assert tdc.sum() > 0
    merged = set(keys[hint]) - {""}
    assert not merged & set(keys[tdc])
    assert not merged & set(keys[tdc & (rows["split"] == "test").to_numpy()])
    assert (rows.loc[hint, "split"] == "").all()  # HINT's random split is not carried


def test_every_endpoint_has_a_kmelloddy_test_category(catalog):
    from pipelines.kmelloddy import TEST_CATEGORY

    assert set(catalog["endpoint"]) | set(endpoint_aliases(catalog)) <= set(TEST_CATEGORY)


def test_demo_subset_is_catalog_endpoints(catalog):
    from pipelines.catalog import DEMO_ENDPOINTS

    assert resolve_endpoints(list(DEMO_ENDPOINTS), catalog) == list(DEMO_ENDPOINTS)
