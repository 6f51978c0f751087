"""Process-wide defaults that keep every run offline and quiet, applied only when asked.

Importing a fedadmet package changes nothing global. The ``fedadmet`` command line calls
:func:`configure` once, before any command runs; a library user calls ``pipelines.configure()``
(or leaves the process as it is). Only variables the user has not set are filled in: a user's
explicit choice always wins. Processes the project starts itself (Flower's SuperLink/SuperNode,
Ray workers) get :func:`runtime_environment` passed explicitly, so they are offline and quiet
whether or not the parent called :func:`configure`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

log = logging.getLogger(__name__)

RUNTIME_DEFAULTS: Mapping[str, str] = {
    # Prefect: no telemetry (offline telemetry calls raise errors and slow start-up).
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    # Prefect's ephemeral API starts a local server subprocess on first use; its default 20 s
    # start-up limit is too short on a loaded 2-core machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    # Flower: never let the SuperLink install app dependencies with uv (it would pull a CUDA
    # torch), and never ask the network for a newer release.
    "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    "FLWR_DISABLE_UPDATE_CHECK": "1",
    "FLWR_TELEMETRY_ENABLED": "0",
    # Ray (Flower's simulation backend): no usage stats, no dashboard.
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
    # Hugging Face / tokenizers, should any dependency look: stay offline.
    "HF_HUB_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # OpenMP threads (LightGBM, torch) sleep instead of spinning while they wait: on a busy
    # 2-core machine spinning threads starve the other processes (measured ~10x slower runs).
    "OMP_WAIT_POLICY": "PASSIVE",
}


def runtime_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: ``os.environ``) with every unset runtime default filled in.

    Returns a new dict; nothing is changed. Used for the environment of child processes.
    """
    base = dict(os.environ if environ is None else environ)
    return {**RUNTIME_DEFAULTS, **base}


def mute_rdkit_log() -> None:
    """Silence RDKit's per-molecule parse/valence messages in this process (every reject is reported
    with a reason instead). Worker processes the project starts (pools, Flower ClientApps) call it
    themselves: a forkserver or a Ray worker does not inherit the parent's RDKit log state."""
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def configure() -> None:
    """Apply the runtime defaults to this process: fill unset variables of :data:`RUNTIME_DEFAULTS`
    into ``os.environ`` and mute RDKit's per-molecule log (rejects are reported with a reason).

    Call it once at start-up, before torch or LightGBM are imported (OpenMP reads ``OMP_WAIT_POLICY``
    when it loads) and before Prefect, Flower or Ray are used. Calling it again is harmless.
    If Prefect was imported already, its global settings are re-read so they see the new values.
    """
    for key, value in RUNTIME_DEFAULTS.items():
        os.environ.setdefault(key, value)
    mute_rdkit_log()
    prefect_context = sys.modules.get("prefect.context")
    if prefect_context is not None:
        prefect_context.refresh_global_settings_context()
    log.debug("runtime defaults applied")
