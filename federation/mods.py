"""Client-side Flower mods: an audit log of what leaves a partner, and a poisoning adversary.

``audit_mod`` writes one JSON line per outgoing message (record names, array keys / shapes /
dtypes, metric names and value types, config keys); values are never written. It is the
privacy evidence the tests assert on and an audit trail a partner can keep.
``sign_flip_mod`` is for robustness experiments only: it turns a partner's honest update
``w`` into ``g - s * (w - g)`` (sign-flipped and scaled around the received global ``g``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message

log = logging.getLogger(__name__)


def describe_message(msg: Message) -> dict:
    """Structure of a message's content (no values)."""
    if msg.has_error():
        return {"error": str(msg.error.reason)}
    content = msg.content
    return {
        "arrays": {name: {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in rec.items()}
                   for name, rec in content.array_records.items()},
        "metrics": {name: {k: type(v).__name__ for k, v in rec.items()}
                    for name, rec in content.metric_records.items()},
        "configs": {name: {k: type(v).__name__ + (f"[{len(v)}]" if isinstance(v, list) else "")
                           for k, v in rec.items()}
                    for name, rec in content.config_records.items()},
    }


def audit_mod(folder: Path | None, partner_of: Callable[[Context], str]):
    """A mod appending ``describe_message`` of every reply to ``<folder>/<partner>.jsonl``.

    ``folder`` ``None``: the node config's ``audit-dir`` (deployment), else no record is kept.
    """

    def mod(msg: Message, context: Context, call_next) -> Message:
        reply = call_next(msg, context)
        where = folder if folder is not None else context.node_config.get("audit-dir")
        if not where:
            return reply
        target = Path(str(where))
        entry = {"message_type": msg.metadata.message_type, **describe_message(reply)}
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{partner_of(context)}.jsonl"
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return reply

    return mod


def sign_flip_mod(partners: set[str], scale: float, partner_of: Callable[[Context], str]):
    """A mod that makes the listed partners send ``g - scale * (w - g)`` instead of ``w``."""

    def mod(msg: Message, context: Context, call_next) -> Message:
        reply = call_next(msg, context)
        if reply.has_error() or partner_of(context) not in partners:
            return reply
        received = next(iter(msg.content.array_records.values()))
        name, sent = next(iter(reply.content.array_records.items()))
        flipped = {}
        for key, array in sent.items():
            g = received[key].numpy() if key in received else array.numpy()
            flipped[key] = Array(np.ascontiguousarray((g - scale * (array.numpy() - g)).astype(array.numpy().dtype)))
        reply.content[name] = ArrayRecord(flipped)
        log.warning("adversary %s sent a sign-flipped update (scale %.1f)", partner_of(context), scale)
        return reply

    return mod
