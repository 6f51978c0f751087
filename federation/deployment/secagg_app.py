"""The SecAgg+ mode as module-level Flower apps, so a SuperLink / SuperNodes can load them.

``federation.secagg`` builds the SecAgg+ apps for one config object (simulation). On the
Deployment Engine the apps are named in a pyproject (``flower_app_secagg/pyproject.toml``) and get
their settings from the run config (``config-path``) and the node config (``data-path``,
``partner-id``, ``work-dir``), exactly like the plain ADMET apps.

The ClientApp here adds one thing: with node config ``audit-dir`` set, every reply that leaves the
node is described in ``<audit-dir>/<partner>.secagg.jsonl`` (with the run id) - record names, array shapes and dtypes, and
for SecAgg+ masked-vector uploads the decoded arrays' shape, dtype and value range (never the
values). That is the evidence that, in this mode, a partner never sends its model update in the
clear: what leaves is a vector masked over the field ``[0, modulus)``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from flwr.app import Context, Message
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import bytes_to_ndarray
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS, Key
from flwr.serverapp import Grid, ServerApp

from federation.client_app import NodeSettings, make_client_app, resolve_node
from federation.mods import describe_message
from federation.secagg import PartnerClient, RoutingClientApp, run_secagg_server
from federation.server_app import RESULT_FILE, config_from_context

log = logging.getLogger(__name__)

server_app = ServerApp()


@server_app.main()
def _main(grid: Grid, context: Context) -> None:
    cfg = config_from_context(context)
    outcome = run_secagg_server(grid, context, cfg)
    (Path(cfg.out_dir) / RESULT_FILE).write_text(json.dumps(outcome, indent=2, default=float))


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


class AuditedClientApp(ClientApp):
    """Runs ``inner`` and, when the node config names an ``audit-dir``, logs what leaves."""

    def __init__(self, inner: ClientApp, settings: NodeSettings) -> None:
        super().__init__()
        self.inner, self.settings = inner, settings

    def __call__(self, message: Message, context: Context) -> Message:
        reply = self.inner(message, context)
        folder = context.node_config.get("audit-dir")
        if folder:
            partner = resolve_node(context, self.settings).partner
            entry = {"run_id": int(context.run_id), "message_type": message.metadata.message_type,
                     **describe_message(reply)}
            masked = describe_masked_upload(reply)
            if masked is not None:
                entry["masked_upload"] = masked
            path = Path(str(folder)) / f"{partner}.secagg.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        return reply


def _make_client_app() -> ClientApp:
    settings = NodeSettings()
    legacy = ClientApp(client_fn=lambda context: PartnerClient(context, settings).to_client(),
                       mods=[secaggplus_mod])
    return AuditedClientApp(RoutingClientApp(make_client_app(settings), legacy), settings)


client_app = _make_client_app()
