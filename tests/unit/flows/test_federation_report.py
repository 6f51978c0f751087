"""The federated run's dashboard tables, built from a report made by federation.report.build_report."""

from __future__ import annotations

import math

from federation.report import build_report
from flows import federation_report


def _outcome(dp: bool = False) -> dict:
    rounds = [
        {"round": 1, "bytes": 100, "n_replies": 3, "accepted": ["partner_00", "partner_01"], "rejected": ["partner_02"],
         "failed": [], "norms": {}, "train_loss": 0.9},
        {"round": 2, "bytes": 100, "n_replies": 2, "accepted": ["partner_00", "partner_01"], "rejected": [],
         "failed": ["partner_02"], "norms": {}, "train_loss": 0.00064},
    ]
    return {"strategy": "trimmed", "heads": "shared", "rounds": 2, "tasks": [],
            "partners": {"partner_00": {"metric": 0.61, "n-train": 40, "n-test": 9},
                         "partner_01": {"metric": 0.55, "n-train": 30, "n-test": 7},
                         "partner_02": {"metric": 0.40, "n-train": 20, "n-test": 5}},
            "round_log": rounds,
            "rejections": [{"round": 1, "partner": "partner_02", "reason": "update norm z-score 4.1 > 3"}],
            "dp": {"clipping_norm": 1.0, "noise_multiplier": 0.8} if dp else None}


def test_partner_table_has_counts_references_and_missing_partners():
    report = build_report(_outcome(), local={"partner_00": {"metric": 0.5, "endpoints": {}}},
                          pooled={"partner_00": {"metric": 0.7, "endpoints": {}}})
    table = federation_report.partner_frame(report, expected=["partner_00", "partner_01", "partner_02", "partner_03"])
    rows = table.set_index("partner")
    assert list(rows.index) == ["partner_00", "partner_01", "partner_02", "partner_03"]
    assert rows.loc["partner_00", ["best_solo", "federated", "pooled"]].tolist() == [0.5, 0.61, 0.7]
    assert math.isnan(rows.loc["partner_01", "best_solo"])
    assert rows.loc["partner_00", "n_train"] == 40 and rows.loc["partner_01", "n_test"] == 7
    assert rows["status"].to_dict() == {"partner_00": "ok", "partner_01": "ok", "partner_02": "missed a round",
                                        "partner_03": "missing"}


def test_round_table_counts_updates_and_carries_dp_settings():
    rounds = federation_report.round_frame(build_report(_outcome(dp=True)))
    assert rounds[["round", "accepted", "rejected", "failed", "replies"]].values.tolist() == [[1, 2, 1, 0, 3],
                                                                                             [2, 2, 0, 1, 2]]
    assert rounds["train_loss"].tolist() == [0.9, 0.00064]
    assert rounds["dp_noise_multiplier"].tolist() == [0.8, 0.8]
    assert rounds["epsilon"].isna().all()  # the federation report carries no epsilon: shown as unknown
    assert "epsilon" not in federation_report.round_frame(build_report(_outcome())).columns


def test_rejections_keep_the_servers_reason(tmp_path):
    report = build_report(_outcome())
    rejected = federation_report.rejection_frame(report)
    assert rejected.to_dict(orient="records") == [{"round": 1, "partner": "partner_02",
                                                   "reason": "update norm z-score 4.1 > 3"}]
    files = federation_report.publish(report, tmp_path, expected=["partner_00", "partner_01", "partner_02"])
    assert files["round_plot"].exists() and files["partner_plot"].exists()
    md = federation_report.summary_markdown(federation_report.partner_frame(report), federation_report.round_frame(report),
                                            rejected, tmp_path)
    assert "updates rejected: 1" in md and "update norm z-score 4.1 > 3" in md


def test_round_table_shows_the_accountants_epsilon_and_delta_per_round(tmp_path, caplog):
    outcome = _outcome(dp=True)
    outcome["round_log"][0] |= {"epsilon": 1.23456, "delta": 1e-5}
    outcome["round_log"][1] |= {"epsilon": 1.9, "delta": 1e-5}
    report = build_report(outcome)
    rounds = federation_report.round_frame(report)
    assert rounds["epsilon"].tolist() == [1.23456, 1.9] and rounds["delta"].tolist() == [1e-5, 1e-5]
    md = federation_report.summary_markdown(federation_report.partner_frame(report), rounds,
                                            federation_report.rejection_frame(report), tmp_path)
    assert "after round 2: epsilon 1.9 at delta 1e-05" in md
    # a record without the keys shows them empty, not carried over from another round
    outcome["round_log"][1].pop("epsilon")
    assert math.isnan(federation_report.round_frame(build_report(outcome))["epsilon"].iloc[1])
    # without DP settings in the report, the columns still follow the round records
    plain = _outcome()
    plain["round_log"][1]["epsilon"] = 0.5
    assert federation_report.round_frame(build_report(plain))["epsilon"].isna().tolist() == [True, False]
    lines = federation_report.round_log_lines(rounds)
    assert lines[0] == "round 1: mean train loss 0.9, 3 replies, 2 accepted, 1 rejected, 0 failed; " \
                       "epsilon 1.235 at delta 1e-05"
    with caplog.at_level("INFO", logger="flows.federation_report"):
        federation_report.publish(report, tmp_path)
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("round ")] == lines


def test_tables_name_partners_by_id_never_by_flower_node_id():
    outcome = _outcome()
    # the server's placeholders for nodes: 7 is known from the run's node map, 9 never named itself
    outcome["round_log"][1]["failed"] = ["node-7"]
    outcome["stats_failed"] = ["unidentified partner (node id 9)"]
    outcome["rejections"] = [{"round": 1, "partner": "node-7", "reason": "update norm z-score 4.1 > 3"}]
    report = build_report(outcome)
    node_map = {"7": "partner_02", "8": "partner_00"}
    table = federation_report.partner_frame(report, expected=["partner_00", "partner_01", "partner_02", "partner_03"],
                                            partner_of_node=node_map)
    assert not table["partner"].str.contains("node").any()
    assert table.set_index("partner")["status"].to_dict() == {"partner_00": "ok", "partner_01": "ok",
                                                              "partner_02": "missed a round", "partner_03": "missing"}
    assert federation_report.rejection_frame(report, node_map)["partner"].tolist() == ["partner_02"]
    assert federation_report.unidentified_nodes(report, node_map) == ["unidentified partner (node id 9)"]
    # without the node map the placeholder is spelled out, never a bare node-<digits>
    assert federation_report.rejection_frame(report)["partner"].tolist() == ["unidentified partner (node id 7)"]
    # a partner folder whose node sent an error reply naming itself is 'failed', not 'missing'
    outcome["stats_failed"] = ["partner_03"]
    table = federation_report.partner_frame(build_report(outcome), expected=["partner_03"], partner_of_node=node_map)
    assert table.set_index("partner").loc["partner_03", "status"] == "failed"
