"""A sequential, in-process stand-in for Flower's transport (``engine="inprocess"``).

The ServerApp logic (``run_server`` / ``run_secagg_server``) talks to a ``SequentialGrid``; each
message is deep-copied (as the wire would) and handed to the destination node's ClientApp with
that node's persistent ``Context``. Apps, strategy, SecAgg+ protocol, mods and training are the
real ones; only Ray (the Simulation Engine's backend) is not involved, so there is no parallelism
and no start-up cost. Use it where Ray cannot start (a machine too loaded for Ray's fixed
start-up deadlines) or for quick checks; the default engine is Flower's Simulation Engine.
"""

from __future__ import annotations

import copy
import logging
import types
import uuid

from flwr.app import Context, Error, Message, RecordDict

log = logging.getLogger(__name__)

SERVER_NODE_ID = 0


class SequentialGrid:
    """Delivers each message (a copy) to its node's ClientApp, one after the other."""

    def __init__(self, client_app, n_nodes: int, run_id: int = 1) -> None:
        from flwr.supercore.task_identity import TaskIdentity

        TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = run_id, 1, SERVER_NODE_ID
        self.app = client_app
        self.run = types.SimpleNamespace(run_id=run_id)
        self.contexts = {1000 + i: Context(run_id=run_id, node_id=1000 + i,
                                           node_config={"partition-id": i, "num-partitions": n_nodes},
                                           state=RecordDict(), run_config={}) for i in range(n_nodes)}

    def get_node_ids(self) -> list[int]:
        return list(self.contexts)

    def send_and_receive(self, messages, timeout: float | None = None) -> list[Message]:
        replies = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            msg.metadata.__dict__["_src_node_id"] = SERVER_NODE_ID
            delivered = copy.deepcopy(msg)
            try:
                replies.append(self.app(delivered, self.contexts[msg.metadata.dst_node_id]))
            except Exception as exc:  # noqa: BLE001 - a failing ClientApp becomes an error reply, as in Flower
                log.warning("node %s failed: %s", msg.metadata.dst_node_id, exc)
                replies.append(Message(Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=delivered))
        return replies

    def server_context(self) -> Context:
        return Context(run_id=self.run.run_id, node_id=SERVER_NODE_ID, node_config={}, state=RecordDict(),
                       run_config={})
