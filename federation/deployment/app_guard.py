"""A partner node runs only apps it approved: a check of the app's hash before any message is handled.

Flower 1.42's own answer, ``flower-supernode --trusted-entities`` (FABs signed by a trusted key),
needs a SuperLink that attests the FAB's signature (``valid_license`` in the FAB's verifications),
which only Flower's enterprise SuperLink does: against the open-source SuperLink every FAB is
refused with "App verification is not supported by the connected SuperLink". So a fedadmet node runs
``flower-supernode`` through this module (``python -m federation.deployment.app_guard``), which wraps
the SuperNode's message intake with an allow-list of FAB SHA-256 hashes:

* When a message arrives for a run the node has not seen, the guard fetches the run's FAB and hashes
  its bytes (the hash Flower itself names FABs by). A hash that is not on the node's list is
  refused: the message is answered with Flower's own ``INVALID_FAB`` error (no content, no local
  path), the FAB is never stored, so no ClientApp for that run is started and no code from it runs.
* Every refusal is appended to the node's audit log (``<audit-dir>/<partner>.jsonl``, one JSON line:
  ``event = "refused_app"``, the run id and both hashes) and to the SuperNode's log.

The default list holds one hash: the consortium app as this node's own installation builds it
(``federation/deployment/flower_app``; its FAB carries configuration only, the code is the node's
pinned fedadmet install). A node operator can approve more hashes with a file (``--approved-apps``).

What this does not do: it does not vet what an approved app does (the consortium app's code is the
node's own install), and it relies on Flower's SuperNode internals of the pinned version (1.42; a
unit test fails if the wrapped function changes its signature).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import hashlib
import inspect
import json
import logging
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from pipelines.errors import InputError

log = logging.getLogger(__name__)

#: Parameters of ``flwr.supernode.start_client_internal._pull_and_store_message`` in flwr 1.42.
PULL_PARAMETERS = ("state", "object_store", "node_config", "receive", "get_run", "get_fab", "pull_object",
                   "confirm_message_received", "trusted_entities")
REFUSAL_REASON = "app not approved by this node"


def app_hash(app_dir: Path) -> str:
    """SHA-256 of the FAB that ``flwr run`` builds from ``app_dir`` (Flower builds FABs
    deterministically: fixed zip timestamps, sorted files)."""
    from flwr.cli.build import build_fab_from_disk

    if not (Path(app_dir) / "pyproject.toml").is_file():
        raise InputError(f"{app_dir} is not a Flower app (no pyproject.toml)")
    return hashlib.sha256(build_fab_from_disk(Path(app_dir))).hexdigest()


def consortium_app_hash() -> str:
    from federation.deployment.admet_run import project_app_dir

    return app_hash(project_app_dir())


def read_approved(path: Path) -> tuple[str, ...]:
    """Hashes from an approved-apps file: one 64-hex SHA-256 per line, ``#`` comments allowed."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"approved-apps file not found: {path}")
    hashes = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip().lower()
        if not text:
            continue
        if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
            raise InputError(f"{path}:{number}: not a SHA-256 hex digest: {text[:80]!r}")
        hashes.append(text)
    return tuple(hashes)


def write_approved(path: Path, hashes: Iterable[str]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# FAB SHA-256 hashes this node runs (fedadmet app guard)\n"
                    + "".join(f"{h}\n" for h in dict.fromkeys(hashes)))
    return path


def audit_refusal(audit_file: Path | None, partner: str, run_id: int, fab_hash: str, content_hash: str) -> None:
    """One JSON line for a refused app in the node's audit log (what left the node: an error reply)."""
    record = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "event": "refused_app",
        "partner": partner, "run_id": int(run_id), "fab_hash": fab_hash, "content_sha256": content_hash,
        "reply": {"kind": "error", "code": "INVALID_FAB", "reason": REFUSAL_REASON},
    }
    if audit_file is not None:
        audit_file.parent.mkdir(parents=True, exist_ok=True)
        with open(audit_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def guarded_pull(original, approved: frozenset[str], audit_file: Path | None, partner: str):
    """Wrap Flower's ``_pull_and_store_message``: messages of runs whose FAB hash is not approved are
    answered with an ``INVALID_FAB`` error and never handed on."""
    from flwr.app import Error, Message
    from flwr.common.constant import ErrorCode
    from flwr.supernode import start_client_internal as sci

    cleared: set[int] = set()

    @functools.wraps(original)
    def pull(*, state, object_store, receive, get_run, get_fab, **kwargs):
        refused: list = []

        def checked_receive():
            received = receive()
            if received is None:
                return None
            message = received[0]
            run_id = int(message.metadata.run_id)
            if run_id in cleared or state.get_run(run_id) is not None:
                return received
            run = get_run(run_id)
            fab = get_fab(run.fab_hash, run_id)
            content_hash = hashlib.sha256(fab.content).hexdigest()
            if content_hash in approved and content_hash == run.fab_hash:
                cleared.add(run_id)
                return received
            refused.append((message, run.fab_hash, content_hash))
            return None

        result = original(state=state, object_store=object_store, receive=checked_receive, get_run=get_run,
                          get_fab=get_fab, **kwargs)
        if not refused:
            return result
        message, fab_hash, content_hash = refused[0]
        log.error("refused run %s: its app (FAB %s) is not on this node's approved list",
                  message.metadata.run_id, fab_hash[:12])
        audit_refusal(audit_file, partner, message.metadata.run_id, fab_hash, content_hash)
        reply = Message(Error(ErrorCode.INVALID_FAB, REFUSAL_REASON), reply_to=message)
        sci._insert_message(reply, state, object_store)  # noqa: SLF001 - Flower's own refusal path
        return int(message.metadata.run_id)

    return pull


def install(approved: Iterable[str], audit_file: Path | None, partner: str) -> None:
    """Patch the pinned Flower SuperNode's message intake with the guard (this process only)."""
    from flwr.supernode import start_client_internal as sci

    original = sci._pull_and_store_message  # noqa: SLF001
    params = tuple(inspect.signature(original).parameters)
    if params != PULL_PARAMETERS:
        raise RuntimeError(f"flwr's SuperNode message intake changed ({params}); the app guard needs updating")
    sci._pull_and_store_message = guarded_pull(original, frozenset(approved), audit_file, partner)  # noqa: SLF001


def main(argv: list[str] | None = None) -> None:
    """``python -m federation.deployment.app_guard --approved FILE [--audit FILE] --partner ID -- <flower-supernode args>``"""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(prog="fedadmet-supernode")
    parser.add_argument("--approved", type=Path, required=True)
    parser.add_argument("--audit", type=Path, default=None)
    parser.add_argument("--partner", default="")
    args = parser.parse_args(argv[:split])
    try:
        approved = read_approved(args.approved)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - a process entry point
        raise SystemExit(2) from None
    install(approved, args.audit, args.partner)
    from federation.deployment.warm_clientapp import SOCKET_ENV, start_zygote

    if os.environ.get(SOCKET_ENV):  # node start --warm-clientapp: the pre-imported ClientApp launcher
        start_zygote(os.environ[SOCKET_ENV], os.getpid())
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *argv[split + 1:]]
    flower_supernode()


if __name__ == "__main__":
    main()
