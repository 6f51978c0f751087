"""Fallback transport for machines where Ray cannot start (``engine = "inprocess"``): not a second engine.

``run_inprocess(server_app, client_app, n_nodes, run_config)`` drives the *same* ServerApp and
ClientApp objects the Simulation Engine and the Deployment Engine run, through their public call
API: ``server_app(grid, context)`` with a ``SequentialGrid``, which hands every message, deep-copied
as the wire would, to ``client_app(message, context)`` with that node's persistent ``Context``
(``node_config`` ``partition-id`` / ``num-partitions`` as in simulation, the same ``run_config``).
Messages and replies are built with Flower's public ``Message`` constructors; this module writes no
private metadata field. What it does set is ``flwr.supercore.TaskIdentity`` (run / node / task id of
the process), as Flower's own ServerApp runner does, because ``Message(...)`` reads it.

There is no parallelism and no Ray start-up; message ids stay empty (nothing here routes by id:
replies are returned in order). Strategy, SecAgg+ protocol, mods and training are the real ones.
"""

from __future__ import annotations

import copy
import logging
import types

from flwr.app import Context, Error, Message, RecordDict
from flwr.serverapp import Grid

from federation.grids import SynchronousOnly

log = logging.getLogger(__name__)

SERVER_NODE_ID = 0
FIRST_NODE_ID = 1000


class SequentialGrid(Grid):
    """Delivers each message (a copy) to its node's ClientApp, one after the other.

    ``record=True`` keeps every (sent message, reply) pair in ``exchanges``, in order: what the
    server sent and what it received, for inspecting exactly what left each node.
    """

    def __init__(self, client_app, n_nodes: int, run_config: dict, run_id: int = 1, record: bool = False) -> None:
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = run_id, 1, SERVER_NODE_ID
        self.app = client_app
        self.run_id = run_id
        self.record = record
        self.exchanges: list[tuple[Message, Message]] = []
        self.contexts = {FIRST_NODE_ID + i: Context(run_id=run_id, node_id=FIRST_NODE_ID + i,
                                                    node_config={"partition-id": i, "num-partitions": n_nodes},
                                                    state=RecordDict(), run_config=dict(run_config))
                         for i in range(n_nodes)}

    # -- Grid --------------------------------------------------------------------------------------
    def set_run(self, run) -> None:  # the run is fixed at construction
        return None

    @property
    def run(self):
        """Only ``run_id`` (what the apps read); the run is fixed at construction."""
        return types.SimpleNamespace(run_id=self.run_id)

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def push_messages(self, messages):
        raise SynchronousOnly("SequentialGrid delivers synchronously: use send_and_receive")

    def pull_messages(self, message_ids):
        raise SynchronousOnly("SequentialGrid delivers synchronously: use send_and_receive")

    def send_and_receive(self, messages, *, timeout: float | None = None) -> list[Message]:
        messages = list(messages)
        replies = []
        for msg in messages:
            delivered = copy.deepcopy(msg)
            context = self.contexts[msg.metadata.dst_node_id]
            try:
                replies.append(self.app(delivered, context))
            except Exception as exc:  # noqa: BLE001 - a failing ClientApp becomes an error reply, as in Flower
                log.warning("node %s failed: %s", msg.metadata.dst_node_id, exc)
                replies.append(Message(Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=delivered))
        if self.record:
            self.exchanges.extend(zip(messages, replies, strict=True))
        return replies


def server_context(run_config: dict, run_id: int = 1) -> Context:
    return Context(run_id=run_id, node_id=SERVER_NODE_ID, node_config={}, state=RecordDict(),
                   run_config=dict(run_config))


def run_inprocess(server_app, client_app, n_nodes: int, run_config: dict, grid: SequentialGrid | None = None) -> None:
    """Run ``server_app`` against ``n_nodes`` copies of ``client_app`` in this process.

    ``grid`` (optional) is a ``SequentialGrid`` (or subclass, e.g. one that records replies) to use."""
    grid = grid or SequentialGrid(client_app, n_nodes, run_config)
    log.warning("engine 'inprocess' (fallback): Flower apps over a sequential in-process transport, no Ray")
    server_app(grid, server_context(run_config, grid.run_id))
