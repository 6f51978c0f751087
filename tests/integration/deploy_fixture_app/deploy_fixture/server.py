"""ServerApp: FedAvg rounds with a per-round timeout, a minimum node count, per-round
checkpoints, resume, and a report naming partners that dropped out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.serverapp import Grid, ServerApp

app = ServerApp()
N_FEATURES = 4


def _wait_for_nodes(grid: Grid, min_nodes: int, timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= min_nodes or time.monotonic() > deadline:
            return nodes
        time.sleep(0.5)


@app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    out = Path(str(cfg["out-dir"]))
    out.mkdir(parents=True, exist_ok=True)
    ckpt = out / "checkpoint.npz"
    rounds, min_nodes = int(cfg["num-server-rounds"]), int(cfg["min-nodes"])
    timeout = float(cfg["round-timeout"])
    start_round, w = 1, np.zeros(N_FEATURES, dtype=np.float32)
    history: list[dict] = []
    if bool(cfg["resume"]) and ckpt.exists():
        saved = np.load(ckpt)
        w, start_round = saved["w"], int(saved["round"]) + 1
        history = json.loads((out / "report.json").read_text())["history"]
    seen: dict[int, str] = {}
    for rnd in range(start_round, rounds + 1):
        nodes = _wait_for_nodes(grid, min_nodes, timeout)
        if len(nodes) < min_nodes:
            raise RuntimeError(f"round {rnd}: {len(nodes)} nodes online, need {min_nodes}")
        msgs = [
            Message(RecordDict({"arrays": ArrayRecord([w]), "config": ConfigRecord({"round": rnd})}),
                    dst_node_id=n, message_type="train", group_id=str(rnd))
            for n in nodes
        ]
        replies = [r for r in grid.send_and_receive(msgs, timeout=timeout) if not r.has_error()]
        if len(replies) < min_nodes:
            raise RuntimeError(f"round {rnd}: {len(replies)} replies, need {min_nodes}")
        weights, counts, partners = [], [], []
        for r in replies:
            weights.append(r.content["arrays"].to_numpy_ndarrays()[0])
            counts.append(float(r.content["metrics"]["num-examples"]))
            partner = str(r.content["meta"]["partner"])
            seen[r.metadata.src_node_id] = partner
            partners.append(partner)
        w = np.average(np.stack(weights), axis=0, weights=counts).astype(np.float32)
        history.append({"round": rnd, "partners": sorted(partners),
                        "missing": sorted(set(seen.values()) - set(partners))})
        tmp = out / "checkpoint.tmp.npz"
        np.savez(tmp, w=w, round=rnd)
        tmp.replace(ckpt)
        report = {"rounds": rnd, "weights": w.tolist(), "history": history,
                  "missing_partners": sorted({m for h in history for m in h["missing"]})}
        (out / "report.json").write_text(json.dumps(report, indent=2))
        if rnd < rounds:
            time.sleep(float(cfg["round-pause"]))  # lets a test kill a node between rounds
