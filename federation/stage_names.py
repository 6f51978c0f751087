"""The query stages' names (a module of its own so the ClientApp can route by them without
importing the server's stage code: ``federation.stages`` re-exports :class:`Stage`)."""

from __future__ import annotations

import enum

from flwr.app import MessageType


class Stage(str, enum.Enum):
    """A query stage; the Flower message type is ``query.<value>``."""

    STATS = "stats"
    SETUP = "setup"
    REPORT = "report"

    @property
    def message_type(self) -> str:
        return f"{MessageType.QUERY}.{self.value}"
