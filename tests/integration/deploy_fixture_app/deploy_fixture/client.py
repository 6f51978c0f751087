"""ClientApp: fits a linear model on the partner's private CSV named in ``--node-config``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

app = ClientApp()


def _load(path: str) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(Path(path), delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    return data[:, :-1], data[:, -1]


@app.train()
def train(msg: Message, context: Context) -> Message:
    x, y = _load(str(context.node_config["data-path"]))
    w = msg.content["arrays"].to_numpy_ndarrays()[0].astype(np.float64)
    lr = float(context.run_config["lr"])
    for _ in range(int(context.run_config["local-steps"])):
        w -= lr * (2.0 / len(y)) * x.T @ (x @ w - y)
    loss = float(np.mean((x @ w - y) ** 2))
    content = RecordDict({
        "arrays": ArrayRecord([w.astype(np.float32)]),
        "metrics": MetricRecord({"num-examples": len(y), "train_loss": loss}),
        "meta": ConfigRecord({"partner": str(context.node_config.get("partner-id", "?"))}),
    })
    return Message(content=content, reply_to=msg)
