"""federation package."""

import pipelines  # noqa: F401  (applies the offline/quiet runtime defaults)
