"""The consortium's SuperLink with its Control API reachable by the operator only.

Flower 1.42 serves the Fleet API (SuperNodes), the Control API (``flwr run / ls / stop / supernode
register``) and the ServerApp Runtime API on one HTTPS port, and the open-source build has no
account authentication for the Control API (OIDC login needs Flower's enterprise build;
``--control-api-address`` is deprecated and ignored). Anyone who can reach that port with the
consortium's ``ca.crt`` (every partner) could list nodes and runs, register keys, stop runs and
submit an app to every node.

So fedadmet starts ``flower-superlink`` through this module
(``python -m federation.deployment.locked_superlink``): the same FastAPI app Flower builds, served by
one uvicorn server on **two** listeners with the same TLS certificate:

* the **public** listener (``--host``/``--port``, what partners connect to) answers only the Fleet API
  (``/v1/fleet/...``) and ``/health``; every other path (Control, Runtime, docs) gets HTTP 403 and a
  log line, before Flower's own middleware runs;
* the **operator** listener binds ``127.0.0.1`` (``--operator-port``) and answers everything; the
  operator's ``flwr`` CLI and the SuperLink's own ServerApp processes use it.

What it protects: a partner (or anyone on the network) holding ``ca.crt`` and even a registered node
key cannot use the Control or Runtime API. What it does not: anyone with a shell on the operator's
machine can reach the loopback listener (there is no operator password in open-source Flower);
keep that machine to the operator. It relies on Flower 1.42's SuperLink internals (a unit test
fails if they change).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import socket
import sys

log = logging.getLogger(__name__)

#: Paths the public listener answers (the Fleet API SuperNodes use, and the health check).
PUBLIC_PREFIXES = ("/v1/fleet/",)
PUBLIC_PATHS = ("/health",)
REFUSAL = b"forbidden: this SuperLink serves only the Fleet API on its public address\n"


def public_path(path: str) -> bool:
    return path in PUBLIC_PATHS or any(path.startswith(p) for p in PUBLIC_PREFIXES)


class OperatorOnlyMiddleware:
    """ASGI middleware: requests that arrived on any port but ``operator_port`` may use only
    :data:`PUBLIC_PREFIXES` / :data:`PUBLIC_PATHS`; everything else is answered 403."""

    def __init__(self, app, operator_port: int):
        self.app = app
        self.operator_port = int(operator_port)

    async def __call__(self, scope, receive, send):
        if scope.get("type") in ("http", "websocket"):
            server = scope.get("server") or (None, None)
            path = str(scope.get("path", ""))
            if server[1] != self.operator_port and not public_path(path):
                client = scope.get("client") or ("?", 0)
                log.warning("refused %s from %s on the public listener (Control/Runtime API are operator-only)",
                            path, client[0])
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1008})
                    return
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain"),
                                        (b"content-length", str(len(REFUSAL)).encode())]})
                await send({"type": "http.response.body", "body": REFUSAL})
                return
        await self.app(scope, receive, send)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _split_host_port(args: list[str]) -> tuple[list[str], str, int]:
    """Take ``--host``/``--port`` out of flower-superlink's arguments."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9093)
    known, rest = parser.parse_known_args(args)
    return rest, known.host, known.port


def main(argv: list[str] | None = None) -> None:
    """``python -m federation.deployment.locked_superlink --operator-port P -- <flower-superlink args>``"""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="fedadmet-superlink")
    parser.add_argument("--operator-port", type=int, required=True)
    ours = parser.parse_args(argv[:split])
    rest, public_host, public_port = _split_host_port(argv[split + 1:])
    operator_host = "127.0.0.1"
    if ours.operator_port == public_port:
        print("error: --operator-port must differ from --port", file=sys.stderr)  # noqa: T201
        raise SystemExit(2)

    import uvicorn
    from flwr.supercore.http_logging import get_uvicorn_log_config
    from flwr.supercore.logger import console_handler
    from flwr.superlink.main import create_app

    fsl = importlib.import_module("flwr.superlink.cli.flower_superlink")  # the module, not the function

    # Flower's own argument parsing and lifespan; host/port name the operator listener, so the
    # SuperExec that runs ServerApps reaches the Runtime API there.
    sys.argv = ["flower-superlink", *rest, "--host", operator_host, "--port", str(ours.operator_port)]
    config = fsl._parse_superlink_lifespan_config()  # noqa: SLF001 - pinned flwr 1.42
    app = create_app(config, fsl.SuperLinkLifespan)
    app.add_middleware(OperatorOnlyMiddleware, operator_port=ours.operator_port)
    sockets = [_bind(public_host, public_port), _bind(operator_host, ours.operator_port)]
    logging.getLogger("flwr").info("SuperLink: Fleet API on %s:%d (public), Control/Runtime API on %s:%d only",
                                   public_host, public_port, operator_host, ours.operator_port)
    server = uvicorn.Server(uvicorn.Config(
        app=app, reload=False, access_log=True, log_config=get_uvicorn_log_config(console_handler.level),
        ssl_keyfile=config.ssl_keyfile, ssl_certfile=config.ssl_certfile, workers=1,
    ))
    server.run(sockets=sockets)


if __name__ == "__main__":
    main()
