"""The project's grid wrappers share one delegating base (``federation.grids.DelegatingGrid``)."""

from __future__ import annotations

import time

from flwr.app import ConfigRecord, Message, Metadata, MetricRecord, RecordDict

from federation.grids import DelegatingGrid, SynchronousOnly
from federation.metered_grid import MeteredGrid
from federation.trees import NodeSubset

GRID_MEMBERS = ("set_run", "run", "create_message", "get_node_ids", "push_messages", "pull_messages",
                "send_and_receive")


class _Inner:
    """A grid that answers every message at once and remembers what reached it."""

    def __init__(self):
        self.run_set = None
        self.sent: list[Message] = []

    def set_run(self, run):
        self.run_set = run

    @property
    def run(self):
        return ("run", self.run_set)

    def get_node_ids(self):
        return [1, 2, 3]

    def push_messages(self, messages):
        raise SynchronousOnly("replies come only through send_and_receive, as federation.inprocess.SequentialGrid")

    def pull_messages(self, message_ids):
        return []

    def send_and_receive(self, messages, *, timeout=None):
        out = []
        for m in messages:
            self.sent.append(m)
            md = Metadata(run_id=1, message_id=f"r{m.metadata.dst_node_id}", src_node_id=m.metadata.dst_node_id,
                          dst_node_id=0, reply_to_message_id="", group_id="", created_at=time.time(), ttl=60,
                          message_type=m.metadata.message_type)
            out.append(Message(content=RecordDict({"metrics": MetricRecord({"x": 1.0})}), metadata=md))
        return out


def test_both_wrappers_are_delegating_grids_that_override_only_what_they_change():
    assert issubclass(MeteredGrid, DelegatingGrid) and issubclass(NodeSubset, DelegatingGrid)
    assert [m for m in GRID_MEMBERS if m in vars(NodeSubset)] == ["get_node_ids"]
    assert [m for m in GRID_MEMBERS if m in vars(MeteredGrid)] == ["push_messages", "pull_messages",
                                                                  "send_and_receive"]


def test_a_subset_under_a_metered_grid_narrows_the_nodes_and_forwards_the_rest(monkeypatch):
    from flwr.supercore.task_identity import TaskIdentity

    for attr in ("_run_id", "_task_id", "_node_id"):  # what a ServerApp process has set (Message reads it)
        monkeypatch.setattr(TaskIdentity, attr, 1, raising=False)
    inner = _Inner()
    metered = MeteredGrid(inner)
    subset = NodeSubset(metered, [3, 1])
    subset.set_run("r7")
    assert inner.run_set == "r7" and subset.run == ("run", "r7")
    assert list(subset.get_node_ids()) == [3, 1] and [n.node_id for n in subset.get_nodes()] == [3, 1]
    assert list(metered.get_node_ids()) == [1, 2, 3]
    msgs = [subset.create_message(RecordDict({"config": ConfigRecord({"a": 1})}), "train", n, "1")
            for n in subset.get_node_ids()]
    assert [(m.metadata.dst_node_id, m.metadata.message_type, m.metadata.group_id) for m in msgs] == \
        [(3, "train", "1"), (1, "train", "1")]
    replies = list(subset.send_and_receive(msgs, timeout=5))
    assert [m.metadata.dst_node_id for m in inner.sent] == [3, 1]
    assert sorted(r.metadata.src_node_id for r in replies) == [1, 3] and metered.missing == []
    assert metered.bytes_down > 0 and metered.bytes_up > 0 and len(metered.exchanges) == 1
