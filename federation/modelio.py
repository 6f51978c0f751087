"""Model parameters <-> Flower ArrayRecords, private-heads files, and the partner's report metrics.

Keys: ``trunk.<i>`` for the trunk arrays (``MultitaskNet.trunk_arrays`` order) and
``head.<task>.weight`` / ``head.<task>.bias`` for the task heads.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord

from admet.model import MultitaskNet
from admet.train import evaluate_loss
from federation import scoring, task

log = logging.getLogger(__name__)

HEADS_FILE = "private_heads.npz"
TRUNK_PREFIX = "trunk."
HEAD_PREFIX = "head."


def trunk_keys(model: MultitaskNet) -> list[str]:
    return [f"{TRUNK_PREFIX}{i}" for i in range(len(model.trunk.state_dict()))]


def head_keys(model: MultitaskNet) -> list[str]:
    return [f"{HEAD_PREFIX}{t.name}.{p}" for t in model.tasks for p in ("weight", "bias")]


def model_arrays(model: MultitaskNet, include_heads: bool) -> dict[str, np.ndarray]:
    out = dict(zip(trunk_keys(model), model.trunk_arrays()))
    if include_heads:
        out.update(zip(head_keys(model), model.head_arrays()))
    return out


def model_record(model: MultitaskNet, include_heads: bool) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in model_arrays(model, include_heads).items()})


def heads_record(model: MultitaskNet) -> ArrayRecord:
    return ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in zip(head_keys(model), model.head_arrays())})


def load_arrays(model: MultitaskNet, arrays: dict[str, np.ndarray]) -> None:
    """Load trunk and/or head arrays by key (keys present decide which parts are set)."""
    tk, hk = trunk_keys(model), head_keys(model)
    if any(k.startswith(TRUNK_PREFIX) for k in arrays):
        model.set_trunk_arrays([arrays[k] for k in tk])
    if any(k.startswith(HEAD_PREFIX) for k in arrays):
        missing = [k for k in hk if k not in arrays]
        if missing:
            raise ValueError(f"head arrays missing for {missing[:4]}")
        model.set_head_arrays([arrays[k] for k in hk])
    unknown = set(arrays) - set(tk) - set(hk)
    if unknown:
        raise ValueError(f"unexpected model array keys {sorted(unknown)[:4]}")


def load_record(model: MultitaskNet, record: ArrayRecord) -> None:
    load_arrays(model, {k: a.numpy() for k, a in record.items()})


def heads_file(server_round: int | None = None) -> str:
    """``private_heads.npz`` (the newest), or the copy kept for one round (``private_heads.r003.npz``)."""
    return HEADS_FILE if not server_round else HEADS_FILE.replace(".npz", f".r{int(server_round):03d}.npz")


def save_heads(work_dir: Path, record: ArrayRecord, run_token: str = "", server_round: int | None = None) -> Path:
    """Private heads to the node-local folder (atomic replace), tagged with the run they belong to; with
    ``server_round`` also a copy for that round (the run's model may be an earlier round's,
    ``FederatedConfig.keep_best_round``, and its heads are the ones trained in that round)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    keys = list(record.keys())
    for name in dict.fromkeys([HEADS_FILE, heads_file(server_round)]):
        tmp = work_dir / f".{name}.tmp.npz"
        np.savez(tmp, keys=np.array(keys), run_token=np.array(str(run_token)),
                 **{f"a{i:04d}": record[k].numpy() for i, k in enumerate(keys)})
        os.replace(tmp, work_dir / name)
    return work_dir / HEADS_FILE


def load_heads(work_dir: Path, run_token: str | None = None, server_round: int | None = None) -> ArrayRecord | None:
    """The node's saved private heads (of ``server_round``, else the newest); ``None`` when there are none
    or, given ``run_token``, when they belong to another run (a fresh run into the same folder must not
    start from stale heads; a resumed run carries its token over in the checkpoint)."""
    path = Path(work_dir) / heads_file(server_round)
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as z:
        saved = str(z["run_token"]) if "run_token" in z.files else ""
        if run_token is not None and saved != run_token:
            log.info("private heads in %s belong to another run; starting this run's heads afresh", path)
            return None
        keys = [str(k) for k in z["keys"]]
        return ArrayRecord({k: Array(z[f"a{i:04d}"]) for i, k in enumerate(keys)})


def moments_record(moments: dict[str, np.ndarray]) -> ArrayRecord:
    return ArrayRecord({k: Array(np.asarray(v, dtype=np.float64)) for k, v in moments.items()})


def validation_loss(model: MultitaskNet, data: task.PartnerData, scaling: task.ConsortiumScaling) -> float:
    rows = data.rows("valid")
    if len(rows) == 0:
        return float("nan")
    Y, C = task.align(data, scaling.tasks)
    return evaluate_loss(model, scaling.scale_features(data.X[rows]), scaling.target.transform(Y[rows]), C[rows])


def report_metrics(model: MultitaskNet, data: task.PartnerData, scaling: task.ConsortiumScaling,
                   work_dir: Path, cfg, cache_dir: Path | None = None) -> dict[str, float]:
    """Scalar test scores of the consortium model on the partner's own test rows.

    ``metric`` (mean primary metric), and per endpoint ``test.<endpoint>`` plus
    ``ntest.<endpoint>``; the partner's own model (global trunk + own heads) is saved as a
    bundle in its node-local folder, with the approved-drug context unless the run config's
    ``approved-context`` is off (features through the node's feature cache ``cache_dir``).
    """
    pred, Y = task.predict_partner(model, data, scaling, "test")
    scores = scoring.endpoint_scores(pred, Y, scaling.tasks, only=data.task_names)
    out: dict[str, float] = {"metric": scoring.partner_metric(scores), "n-train": int(len(data.rows("train"))),
                             "n-test": int(len(data.rows("test")))}
    for name, s in scores.items():
        out[f"test.{name}"] = float(s["value"])
        out[f"ntest.{name}"] = int(s["n"])
    if bool(cfg.get("write-bundle", True)):
        from federation.bundles import write_bundle

        domain = None
        if data.smiles is not None:
            domain = ([str(s) for s in data.smiles[data.rows("train")]],
                      [str(s) for s in data.smiles[data.rows("valid")]])
        write_bundle(model, scaling, Path(work_dir) / "bundle", str(cfg["featurizer"]),
                     data_tasks=data.task_names, metrics={k: v for k, v in out.items() if k.startswith("test.")},
                     info={"partner": data.partner}, domain_smiles=domain,
                     approved_context=bool(cfg.get("approved-context", True)), cache_dir=cache_dir)
    return out
