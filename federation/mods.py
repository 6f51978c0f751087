"""Client-side Flower mods: error replies without local detail, an audit log of what leaves a
partner, and a poisoning adversary.

``error_reply_mod`` turns an exception in a handler into Flower's error reply with a reason of the
form ``[partner] ExceptionType: message`` in which every path-like token is replaced by ``<path>``
(the full exception stays in the node's own log); it sits inside ``audit_mod``, so error replies are
audited like every other reply.

``audit_mod`` writes one JSON line per outgoing message (run id, record names, array keys / shapes /
dtypes, metric names and value types, config keys; for a SecAgg+ masked upload the masked vectors'
shapes, dtypes and value ranges); values are never written. It is the privacy evidence the tests
assert on and an audit trail a partner can keep. Where it writes: ``node.Node.audit_dir``.
``sign_flip_mod`` is for robustness experiments only: it turns a partner's honest update
``w`` into ``g - s * (w - g)`` (sign-flipped and scaled around the received global ``g``).
"""

from __future__ import annotations

import json
import logging
import os
import re

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Error, Message
from flwr.common import bytes_to_ndarray
from flwr.common.constant import ErrorCode
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key

from federation.node import resolve_node

log = logging.getLogger(__name__)


#: A token with a path separator (``/data/site/x.csv``, ``C:\\x``, ``./x``) or a home-relative path.
_PATH_TOKEN = re.compile(r"(?:[A-Za-z]:)?(?:~|\.{1,2})?[\\/]?[^\s'\"]*[\\/][^\s'\",;:)]*")


def scrub_paths(text: str) -> str:
    """``text`` with every path-like token replaced by ``<path>``."""
    return _PATH_TOKEN.sub("<path>", str(text))


def error_reply_mod(msg: Message, context: Context, call_next) -> Message:
    """An exception in a handler becomes an error reply naming the partner, with no local paths."""
    try:
        return call_next(msg, context)
    except Exception as exc:  # noqa: BLE001 - every failure must become an audited reply
        try:
            partner = resolve_node(context).partner
        except Exception:  # noqa: BLE001 - the node's identity itself may be what failed
            partner = "unknown partner"
        log.exception("%s: %s handler failed", partner, msg.metadata.message_type)
        reason = f"[{scrub_paths(partner)}] {type(exc).__name__}: {scrub_paths(exc)}"
        return Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason[:500]), reply_to=msg)


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


def describe_masked_upload(reply: Message) -> list[dict] | None:
    """Shape / dtype / value range of the masked vectors in a SecAgg+ upload (None if not one)."""
    if reply.has_error():
        return None
    configs = reply.content.config_records.get(RECORD_KEY_CONFIGS)
    if configs is None or Key.MASKED_PARAMETERS not in configs:
        return None
    out = []
    for blob in configs[Key.MASKED_PARAMETERS]:
        arr = bytes_to_ndarray(blob)
        out.append({"shape": list(arr.shape), "dtype": str(arr.dtype),
                    "min": float(np.min(arr)) if arr.size else None,
                    "max": float(np.max(arr)) if arr.size else None,
                    "size": int(arr.size)})
    return out


def audit_mod(msg: Message, context: Context, call_next) -> Message:
    """Append ``describe_message`` of the reply (with the run id, and for a SecAgg+ upload the masked
    vectors' shapes and value ranges) to ``<audit dir>/<partner>.jsonl``; no audit dir, no record."""
    reply = call_next(msg, context)
    where = resolve_node(context)
    if where.audit_dir is None:
        return reply
    entry = {"run_id": int(context.run_id), "message_type": msg.metadata.message_type, **describe_message(reply)}
    masked = describe_masked_upload(reply)
    if masked is not None:
        entry["masked_upload"] = masked
    where.audit_dir.mkdir(parents=True, exist_ok=True)
    with open(where.audit_dir / f"{where.partner}.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return reply


def sign_flip_mod(msg: Message, context: Context, call_next) -> Message:
    """Partners named in the run config's ``poison-partners`` send ``g - scale * (w - g)`` instead of ``w``."""
    reply = call_next(msg, context)
    where = resolve_node(context)
    if reply.has_error() or where.partner not in where.config.poison_partners:
        return reply
    scale = where.config.poison_scale
    received = next(iter(msg.content.array_records.values()))
    name, sent = next(iter(reply.content.array_records.items()))
    flipped = {}
    for key, array in sent.items():
        g = received[key].numpy() if key in received else array.numpy()
        flipped[key] = Array(np.ascontiguousarray((g - scale * (array.numpy() - g)).astype(array.numpy().dtype)))
    reply.content[name] = ArrayRecord(flipped)
    log.warning("adversary %s sent a sign-flipped update (scale %.1f)", where.partner, scale)
    return reply
