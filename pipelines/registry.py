"""A string-keyed registry of small classes, the one shape every pluggable part uses.

Featurizers (``pipelines.featurize``), model families (``admet.members``) and federated
strategies (``federation.strategy``) are each one small class registered under a name, as
chemprop v2 registers its featurizers: adding one is one class with ``@REGISTRY.register("name")``
in one file.

    STRATEGIES = Registry("strategy")

    @STRATEGIES.register("fedavg")
    class FedAvgRule: ...

    STRATEGIES.get("fedavg")  # -> FedAvgRule; an unknown name raises InputError listing the names
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from pipelines.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> class; names are unique, lookups of unknown names fail with the available ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        """Class decorator: register ``cls`` under ``name`` and set ``cls.name``."""

        def decorate(cls: type[T]) -> type[T]:
            if name in self._classes:
                raise ValueError(f"{self.kind} name {name!r} registered twice")
            cls.name = name
            self._classes[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type[T]:
        try:
            return self._classes[name]
        except KeyError:
            raise InputError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
