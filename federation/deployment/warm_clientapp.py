"""A warm ClientApp launcher for a SuperNode (opt-in: ``node start --warm-clientapp``).

Why: with ``--isolation subprocess`` Flower 1.42's SuperExec starts one ``flwr-clientapp`` process
per message (``SubprocessExecutor.launch``); that process imports Flower and the ClientApp (torch,
pandas, RDKit, the model code) before it handles its one message, then exits. Flower 1.42 has no
long-lived ClientApp process: ``flwr-clientapp`` needs a per-task ``--token`` and exits after one
task, ``--isolation process`` only moves the SuperExec out of the SuperNode (it still starts one
``flwr-clientapp`` per message), and the SuperExec's warm executor pools are Kubernetes-only and not
for ClientApps. Measured in ``bench/federation_transport.py``.

What this does: the node's ``flwr-clientapp`` on ``PATH`` is a small shim (stdlib only, ``python -IS``). A per-node *zygote* process has imported Flower and the ClientApp's modules once; the shim
hands it its arguments and its stdin/stdout/stderr over a Unix socket (owner-only, in a private
temporary folder), the zygote forks, and the child runs Flower's own ``flwr_clientapp()`` entry point
with exactly those arguments, so each message still gets a process of its own, its own Runtime API
token and Flower's whole task path (FAB install from the SuperNode, app loading, error replies). The
shim waits for the child and exits with its exit code; a SIGTERM to the shim is passed on to the
child. When the zygote is not (yet) listening, the shim runs Flower's real ``flwr-clientapp``.

What it does not change: the app guard sits in the SuperNode's message intake (``app_guard``), before
any ClientApp process exists, so an unapproved FAB is refused exactly as before; the audit and
error-reply mods are the ClientApp's own. What it does change: the ClientApp code is what the node
had installed when the zygote started (restart the node after upgrading fedadmet), and the process
that runs a message is a fork of the zygote, not a fresh interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import select
import signal
import socket
import stat
import struct
import sys
import tempfile
import traceback
from pathlib import Path

log = logging.getLogger(__name__)

SOCKET_ENV = "FEDADMET_CLIENTAPP_SOCKET"
#: Modules the zygote imports once (what a training message needs).
PRELOAD = ("flwr.supernode.cli.flwr_clientapp", "flwr.supernode.runtime.run_clientapp", "torch", "pandas",
           "federation.client_app", "federation.modelio", "federation.task", "federation.node", "federation.secagg")
_EXIT = struct.Struct("!i")

_SHIM = '''#!{python} -IS
# fedadmet warm ClientApp shim (federation.deployment.warm_clientapp): hand this task to the node's
# pre-imported zygote; run Flower's own flwr-clientapp when the zygote is not listening.
import json, os, signal, socket, struct, sys
REAL = {real!r}
path = os.environ.get({env!r}, "")
conn = None
if path:
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        conn = None
if conn is None:
    os.execv(REAL, [REAL, *sys.argv[1:]])
def _stop(signum, frame):
    try:
        conn.send(b"K")
    except OSError:
        pass
signal.signal(signal.SIGTERM, _stop)
signal.signal(signal.SIGINT, _stop)
socket.send_fds(conn, [json.dumps({{"argv": sys.argv[1:]}}).encode()], [0, 1, 2])
data = b""
while len(data) < 4:
    chunk = conn.recv(4 - len(data))
    if not chunk:
        sys.exit(1)
    data += chunk
sys.exit(struct.unpack("!i", data)[0])
'''


def write_shim(bin_dir: Path) -> Path:
    """``bin_dir/flwr-clientapp``: the shim (put ``bin_dir`` first on the SuperNode's ``PATH``)."""
    from federation.deployment.processes import venv_bin

    bin_dir.mkdir(parents=True, exist_ok=True)
    shim = bin_dir / "flwr-clientapp"
    real = venv_bin() / "flwr-clientapp"
    shim.write_text(_SHIM.format(python=sys.executable, real=str(real), env=SOCKET_ENV))
    shim.chmod(stat.S_IRWXU)
    return shim


def private_socket_path() -> Path:
    """A socket path in a fresh owner-only temporary folder (Unix socket paths are limited to ~100 bytes)."""
    return Path(tempfile.mkdtemp(prefix="fedadmet-node-")) / "clientapp.sock"


def _run_task(argv: list[str]) -> int:
    """In the forked child: Flower's ``flwr-clientapp`` entry point with the shim's arguments."""
    from flwr.supernode.cli.flwr_clientapp import flwr_clientapp

    sys.argv = ["flwr-clientapp", *argv]
    try:
        flwr_clientapp()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child must report, not raise into the zygote's loop
        traceback.print_exc()
        return 1


def _handle(conn: socket.socket) -> None:
    """In a forked handler: receive the shim's request, fork the task, relay kill requests and the exit code."""
    msg, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    request = json.loads(msg or b"{}")
    if len(fds) != 3:
        conn.sendall(_EXIT.pack(1))
        os._exit(0)
    task = os.fork()
    if task == 0:
        conn.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        code = _run_task(list(request.get("argv", [])))
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
    for fd in fds:
        os.close(fd)
    pidfd = os.pidfd_open(task)
    while True:
        ready, _, _ = select.select([conn, pidfd], [], [])
        if pidfd in ready:
            _, status = os.waitpid(task, 0)
            with contextlib.suppress(OSError):
                conn.sendall(_EXIT.pack(os.waitstatus_to_exitcode(status)))
            os._exit(0)
        if conn in ready:
            data = conn.recv(16)
            if not data or b"K" in data:  # the shim was stopped (or is gone): stop the task
                with contextlib.suppress(ProcessLookupError):
                    os.kill(task, signal.SIGTERM)
            if not data:
                _, status = os.waitpid(task, 0)
                os._exit(0)


def _parent_alive(pid: int | None) -> bool:
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(socket_path: Path, parent_pid: int | None = None) -> None:
    """The zygote: import :data:`PRELOAD`, then fork one handler per shim connection (single-threaded)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # run the finally: remove the socket
    for name in PRELOAD:
        importlib.import_module(name)
    socket_path = Path(socket_path)
    socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    socket_path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(socket_path))
    finally:
        os.umask(old)
    server.listen(64)
    server.settimeout(1.0)
    log.info("warm ClientApp launcher ready on %s (%d modules preloaded)", socket_path, len(PRELOAD))
    try:
        while _parent_alive(parent_pid):
            with contextlib.suppress(ChildProcessError):
                while os.waitpid(-1, os.WNOHANG)[0]:
                    pass
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.settimeout(None)
            pid = os.fork()
            if pid == 0:
                server.close()
                try:
                    _handle(conn)
                finally:
                    os._exit(0)
            conn.close()
            log.info("ClientApp task handed to forked process %d (warm launcher)", pid)
    finally:
        server.close()
        socket_path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            socket_path.parent.rmdir()


def start_zygote(socket_path: str, parent_pid: int):
    """Start the zygote next to the SuperNode process (``app_guard`` calls this)."""
    import subprocess

    return subprocess.Popen(  # noqa: S603 - fixed argv
        [sys.executable, "-m", "federation.deployment.warm_clientapp", "--socket", socket_path,
         "--parent-pid", str(parent_pid)], stdin=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fedadmet-warm-clientapp")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--parent-pid", type=int, default=None)
    args = parser.parse_args(argv)
    from pipelines import mute_rdkit_log

    handler = logging.StreamHandler()  # this module's lines only: Flower's loggers keep their own handlers
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    mute_rdkit_log()
    serve(args.socket, args.parent_pid)


if __name__ == "__main__":
    main()
