"""Process-wide defaults that keep every run offline and quiet.

Set once, when ``pipelines`` is first imported (every other package imports it), and only
where the user has not set the variable already: a user's explicit choice always wins.
"""

from __future__ import annotations

import logging
import os

_OFFLINE_DEFAULTS: dict[str, str] = {
    # Prefect: no telemetry (offline telemetry calls raise errors and slow start-up).
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
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

_applied = False


def apply_runtime_defaults() -> None:
    """Set the offline/quiet environment defaults and mute RDKit's per-molecule log noise."""
    global _applied
    if _applied:
        return
    for key, value in _OFFLINE_DEFAULTS.items():
        os.environ.setdefault(key, value)
    try:
        from rdkit import RDLogger

        RDLogger.DisableLog("rdApp.*")
    except ImportError:  # pragma: no cover - rdkit is a hard dependency
        logging.getLogger(__name__).warning("rdkit not importable; RDKit log noise not muted")
    _applied = True
