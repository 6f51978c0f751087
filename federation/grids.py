"""One delegating Flower ``Grid``: the base of the project's grid wrappers.

Flower's ``Grid`` is abstract (``set_run``, ``run``, ``create_message``, ``get_node_ids``,
``push_messages``, ``pull_messages``, ``send_and_receive``). A wrapper that changes one or two of
them (``metered_grid.MeteredGrid`` counts bytes and waits for a quorum, ``trees.NodeSubset`` lists
fewer nodes) subclasses :class:`DelegatingGrid` and overrides only those; everything else goes to
the wrapped grid unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from flwr.app import Message
from flwr.serverapp import Grid


class SynchronousOnly(NotImplementedError):
    """Raised by ``push_messages`` / ``pull_messages`` of a grid that delivers only through
    ``send_and_receive`` (``federation.inprocess.SequentialGrid``); ``MeteredGrid`` then meters that call
    instead of its own push / pull loop."""


class DelegatingGrid(Grid):
    """Every ``Grid`` member forwarded to ``inner``.

    ``create_message`` builds the ``Message`` itself, as Flower now asks (its grids'
    ``create_message`` is deprecated and only wraps the same constructor, with a warning); the grid
    that pushes it sets the run and node ids. ``get_nodes`` is ``Grid``'s own (built from
    ``get_node_ids``), so a subclass that narrows ``get_node_ids`` narrows it too.
    """

    def __init__(self, inner: Grid) -> None:
        self.inner = inner

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
        return self.inner.push_messages(messages)

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self.inner.pull_messages(message_ids)

    def send_and_receive(self, messages: Iterable[Message], *, timeout: float | None = None) -> Iterable[Message]:
        return self.inner.send_and_receive(messages, timeout=timeout)
