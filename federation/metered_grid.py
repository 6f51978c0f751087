"""Bytes on the wire, measured: a ``Grid`` that counts the serialized size of every message.

``MeteredGrid`` wraps the grid Flower hands the ServerApp (simulation, deployment or the
in-process fallback) and adds, for every message the server sends and every reply it receives,
the size of Flower's protobuf serialization of that message (``flwr.common.serde.message_to_proto``:
metadata, every record, every array). Transport framing (gRPC, TLS) is not counted. The server
reads the totals after each round, so the report's bytes per round are measured, not computed from
the model size.

It also keeps rounds from stalling on an absent partner (``quorum``): once ``quorum`` replies are
in, it waits for the rest at most ``grace`` seconds, or as long again as the quorum took, whichever
is longer (on a loaded simulation every partner is slow, and an honest late partner should not be
cut), then returns what arrived; ``missing`` lists the nodes of the last call that did not answer.
The in-process fallback delivers synchronously, so there the inner grid's own call runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from flwr.app import Message
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from flwr.common.serde import message_to_proto
from flwr.serverapp import Grid

from federation.grids import DelegatingGrid, SynchronousOnly

log = logging.getLogger(__name__)

PULL_INTERVAL_S = 0.2


def message_bytes(message: Message) -> int:
    """Serialized size of one message (Flower's protobuf form)."""
    return int(message_to_proto(message).ByteSize())


def message_kind(message: Message) -> str:
    """The message type, plus the SecAgg+ protocol stage for SecAgg+ messages (``train:setup``,
    ``train:share_keys``, ``train:collect_masked_vectors``, ``train:unmask``)."""
    kind = str(message.metadata.message_type)
    if message.has_content() and RECORD_KEY_CONFIGS in message.content.config_records:
        stage = message.content.config_records[RECORD_KEY_CONFIGS].get(Key.STAGE)
        if stage is not None:
            kind = f"{kind}:{stage}"
    return kind


class MeteredGrid(DelegatingGrid):
    """Delegates to ``inner``; ``bytes_down`` / ``bytes_up`` grow with every message sent / received."""

    def __init__(self, inner: Grid, quorum: int | None = None, grace: float = 60.0) -> None:
        super().__init__(inner)
        self.bytes_down = 0
        self.bytes_up = 0
        self.quorum = quorum
        self.grace = grace
        self.missing: list[int] = []
        self.exchanges: list[dict] = []
        """One entry per exchange: kind, messages_down, messages_up, bytes_down, bytes_up, seconds."""

    def _record(self, messages: list[Message], replies: list[Message], down: int, up: int, start: float) -> None:
        kinds = sorted({message_kind(m) for m in messages}) or ["(none)"]
        self.exchanges.append({"kind": ",".join(kinds), "messages_down": len(messages), "messages_up": len(replies),
                               "errors_up": sum(r.has_error() for r in replies), "bytes_down": down,
                               "bytes_up": up, "seconds": round(time.monotonic() - start, 3)})

    def totals(self) -> tuple[int, int]:
        return self.bytes_down, self.bytes_up

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        self.bytes_down += sum(message_bytes(m) for m in messages)
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self.inner.pull_messages(message_ids))
        self.bytes_up += sum(message_bytes(m) for m in replies)
        return replies

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        messages = list(messages)
        self.missing = []
        start, (down0, up0) = time.monotonic(), self.totals()
        try:
            pushed = set(self.inner.push_messages(messages))
        except SynchronousOnly:  # synchronous transport (federation.inprocess)
            replies = self._delegate(messages, timeout)
        else:
            self.bytes_down += sum(message_bytes(m) for m in messages if m.metadata.message_id in pushed)
            ids = {m.metadata.message_id: m.metadata.dst_node_id for m in messages}  # the grid set the ids
            replies = self._pull_until_quorum(ids, pushed, timeout)
        self._record(messages, replies, self.bytes_down - down0, self.bytes_up - up0, start)
        return replies

    def _delegate(self, messages: list[Message], timeout: float | None) -> list[Message]:
        self.bytes_down += sum(message_bytes(m) for m in messages)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        self.bytes_up += sum(message_bytes(m) for m in replies)
        answered = {r.metadata.src_node_id for r in replies}
        self.missing = [m.metadata.dst_node_id for m in messages if m.metadata.dst_node_id not in answered]
        return replies

    def _pull_until_quorum(self, ids: dict[str, int], pushed: set[str], timeout: float | None) -> list[Message]:
        start = time.monotonic()
        need = len(ids) if self.quorum is None else min(len(ids), self.quorum)
        pending = set(pushed)
        unsent = [node for mid, node in ids.items() if mid not in pushed]
        replies: list[Message] = []
        quorum_at = None
        while pending:
            got = self.pull_messages(pending)
            replies.extend(got)
            pending -= {r.metadata.reply_to_message_id for r in got}
            now = time.monotonic()
            if not pending or (timeout is not None and now - start >= timeout):
                break
            if sum(not r.has_error() for r in replies) >= need:  # error replies do not make a quorum
                quorum_at = quorum_at if quorum_at is not None else now
                if now - quorum_at >= max(self.grace, quorum_at - start):
                    break
            time.sleep(PULL_INTERVAL_S)
        self.missing = sorted([ids[mid] for mid in pending if mid in ids] + unsent)
        if self.missing:
            log.warning("%d of %d node(s) did not answer in time; going on with %d replies",
                        len(self.missing), len(ids), len(replies))
        return replies
