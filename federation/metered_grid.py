"""Bytes on the wire, measured: a ``Grid`` that counts the serialized size of every message.

``MeteredGrid`` wraps the grid Flower hands the ServerApp (simulation, deployment or the
in-process fallback) and adds, for every message the server sends and every reply it receives,
the size of Flower's protobuf serialization of that message (``flwr.common.serde.message_to_proto``:
metadata, every record, every array). Transport framing (gRPC, TLS) is not counted. The server
reads the totals after each round, so the report's bytes per round are measured, not computed from
the model size.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import Message
from flwr.common.serde import message_to_proto
from flwr.serverapp import Grid


def message_bytes(message: Message) -> int:
    """Serialized size of one message (Flower's protobuf form)."""
    return int(message_to_proto(message).ByteSize())


class MeteredGrid(Grid):
    """Delegates to ``inner``; ``bytes_down`` / ``bytes_up`` grow with every message sent / received."""

    def __init__(self, inner: Grid) -> None:
        self.inner = inner
        self.bytes_down = 0
        self.bytes_up = 0

    def totals(self) -> tuple[int, int]:
        return self.bytes_down, self.bytes_up

    def set_run(self, run) -> None:
        self.inner.set_run(run)

    @property
    def run(self):
        return self.inner.run

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return self.inner.get_node_ids()

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
        self.bytes_down += sum(message_bytes(m) for m in messages)
        replies = list(self.inner.send_and_receive(messages, timeout=timeout))
        self.bytes_up += sum(message_bytes(m) for m in replies)
        return replies
