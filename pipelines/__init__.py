"""Molecule data pipeline: read -> standardize -> validate -> aggregate -> featurize -> split -> partition.

The bottom layer of fedadmet: imports nothing from the other packages.
"""

from pipelines._runtime import apply_runtime_defaults

apply_runtime_defaults()
