"""Prefect flows that compose the other packages, and the ``fedadmet`` command line."""

import os

import pipelines  # noqa: F401  (applies the offline/quiet runtime defaults)

# Prefect's ephemeral API starts a local server subprocess on first use; its default 20 s
# start-up limit is too short on a loaded 2-core machine. Set before Prefect reads its settings;
# a user's own value wins.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
