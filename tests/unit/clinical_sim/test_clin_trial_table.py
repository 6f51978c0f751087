"""Trial-table parsing: nested/malformed list cells, unusable rows kept and reported."""

import pandas as pd
import pytest
from clin_synthetic import make_trials

from clinical_sim.trial_table import parse_list, parse_trials, phase_number, read_trials
from pipelines.errors import InputError


def test_parse_list_nested_and_malformed():
    assert parse_list("[\"['C79.81', 'D24.1']\", \"['E11']\"]") == (["C79.81", "D24.1", "E11"], "")
    items, problem = parse_list("['aspirin', 'ibuprofen'")  # unterminated
    assert items == ["aspirin", "ibuprofen"] and problem == "not a list literal"
    assert parse_list(float("nan")) == ([], "")
    assert parse_list("[]") == ([], "")
    assert parse_list("metformin") == (["metformin"], "")


def test_phase_numbers():
    assert phase_number("phase 1") == 1.0
    assert phase_number("phase 1/phase 2") == 1.5
    assert phase_number("early phase 1") == 0.5
    assert phase_number("Phase III") == 3.0
    assert phase_number("observational") != phase_number("observational")  # NaN


def test_malformed_rows_are_kept_and_reported(tmp_path):
    good = make_trials(3, seed=1)
    bad = pd.DataFrame([
        {**good.iloc[0].to_dict(), "nctid": "NCT_BADSMILES", "smiless": "[]"},
        {**good.iloc[0].to_dict(), "nctid": "NCT_BADPHASE", "phase": "observational"},
        {**good.iloc[0].to_dict(), "nctid": "NCT_BADLABEL", "label": "maybe"},
        {**good.iloc[0].to_dict(), "nctid": "NCT_TRUNCATED", "drugs": "['aspirin', 'ibup"},
        {**good.iloc[0].to_dict(), "nctid": None},
    ])
    table = pd.concat([good, bad], ignore_index=True)
    path = tmp_path / "trials.csv"
    table.to_csv(path, index=False)
    parsed = read_trials(path, require_label=True)
    assert len(parsed.trials) == len(table)  # every row accounted for
    assert parsed.trials["row"].tolist() == list(range(len(table)))
    problems = dict(zip(parsed.trials["nctid"], parsed.trials["problem"]))
    assert "smiless" in problems["NCT_BADSMILES"]
    assert "phase" in problems["NCT_BADPHASE"]
    assert "label" in problems["NCT_BADLABEL"]
    assert "nctid" in parsed.trials["problem"].iloc[-1]
    # a truncated list is recovered (usable) but the problem is said
    assert "not a list literal" in problems["NCT_TRUNCATED"]
    assert bool(parsed.trials.set_index("nctid").loc["NCT_TRUNCATED", "usable"])
    assert parsed.usable["nctid"].tolist()[:3] == good["nctid"].tolist()
    assert set(parsed.problems["nctid"]) == {"NCT_BADSMILES", "NCT_BADPHASE", "NCT_BADLABEL", ""}


def test_whole_table_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_trials(tmp_path / "missing.csv")
    with pytest.raises(InputError, match="required column"):
        parse_trials(pd.DataFrame({"nctid": ["x"], "phase": ["phase 1"]}))
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(["nctid", "phase", "smiless"]) + "\n")
    with pytest.raises(InputError, match="no rows"):
        read_trials(empty)
