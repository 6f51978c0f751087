"""The screening command's terminal table: scored endpoints only (at most TERMINAL_ENDPOINTS), SMILES cut."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from flows.cli.flow_cmd import TERMINAL_ENDPOINTS, TERMINAL_SMILES, terminal_top


def _result(n_endpoints: int, scored: list[str]):
    endpoints = [f"E{i:02d}" for i in range(n_endpoints)]
    ranked = pd.DataFrame({"rank": [1, 2], "smiles": ["C" * 60, "CCO"], "score": [0.9, 0.5],
                           **{e: [1.0, 2.0] for e in endpoints}, **{f"d_{e}": [1.0, 0.5] for e in scored}})
    ranked["name"] = ["long-chain", "ethanol"]
    return (SimpleNamespace(endpoints=endpoints, ranked=ranked, id_columns=["name"]),
            ranked.loc[:, ["rank", "name", "smiles", "score", *endpoints]])


def test_only_the_endpoints_in_the_score_are_shown_and_the_rest_counted():
    result, frame = _result(47, scored=["E40", "E03"])
    shown, left_out = terminal_top(frame, result)
    assert list(shown.columns) == ["rank", "name", "smiles", "score", "E03", "E40"]  # the model's column order
    assert left_out == 45
    assert shown["smiles"].str.len().max() == TERMINAL_SMILES and shown["smiles"].iloc[1] == "CCO"
    assert shown["score"].tolist() == ["0.9", "0.5"] and shown["E03"].tolist() == ["1", "2"]
    assert frame["smiles"].iloc[0] == "C" * 60  # the caller's frame is not changed


def test_without_a_scored_endpoint_the_first_ones_are_shown_up_to_the_cap():
    result, frame = _result(20, scored=[])
    shown, left_out = terminal_top(frame, result)
    assert [c for c in shown.columns if c.startswith("E")] == [f"E{i:02d}" for i in range(TERMINAL_ENDPOINTS)]
    assert left_out == 20 - TERMINAL_ENDPOINTS


def test_a_narrow_terminal_gets_fewer_endpoint_columns_but_at_least_one():
    result, frame = _result(20, scored=[])
    wide, _ = terminal_top(frame, result, width=200)
    narrow, left_out = terminal_top(frame, result, width=60)
    n_wide = sum(c.startswith("E") for c in wide.columns)
    n_narrow = sum(c.startswith("E") for c in narrow.columns)
    assert n_wide == TERMINAL_ENDPOINTS and 1 <= n_narrow < n_wide and left_out == 20 - n_narrow
    assert sum(max(len(c), *(len(v) for v in narrow[c])) + 3 for c in narrow.columns) + 1 <= 60 or n_narrow == 1
