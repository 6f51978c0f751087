"""Where a node finds the consortium catalog, its endpoint mapping and the fold secret (paths only).

Its own module, without pandas: the ClientApp resolves its node on every message, in a fresh process
on the Deployment Engine. ``pipelines.partner_data`` re-exports it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.errors import InputError


@dataclass(frozen=True, slots=True)
class NodeDataSettings:
    """How a node prepares its table: the consortium catalog, the partner's mapping file, the fold secret."""

    catalog_path: Path | None = None
    """The operator's ``catalog.json`` (None: the embedded catalog)."""
    endpoint_map_path: Path | None = None
    """CSV ``partner_endpoint,catalog_endpoint`` (None: catalog names and aliases only)."""
    fold_secret_path: Path | None = None
    """File holding the consortium's fold secret (None: the public simulation key)."""

    def load(self):
        from pipelines.catalog import EndpointCatalog, read_endpoint_map

        catalog = EndpointCatalog.read(self.catalog_path) if self.catalog_path else EndpointCatalog.embedded()
        mapping = read_endpoint_map(self.endpoint_map_path, catalog) if self.endpoint_map_path else None
        secret = None
        if self.fold_secret_path is not None:
            path = Path(self.fold_secret_path)
            if not path.is_file():
                raise InputError(f"fold secret file not found: {path}")
            secret = path.read_bytes().strip()
            if not secret:
                raise InputError(f"fold secret file {path} is empty")
        return catalog, mapping, secret
