"""Prefect flows that compose the other packages, and the ``fedadmet`` command line."""

import pipelines  # noqa: F401  (applies the offline/quiet runtime defaults)
