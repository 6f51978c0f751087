"""Molecule data pipeline: read -> standardize -> validate -> aggregate -> featurize -> split -> partition.

The bottom layer of fedadmet: imports nothing from the other packages. Importing it (or any
fedadmet package) changes nothing global; ``pipelines.configure()`` applies the offline/quiet
runtime defaults (the ``fedadmet`` command line calls it for you).
"""

from pipelines._runtime import RUNTIME_DEFAULTS, configure, mute_rdkit_log, runtime_environment

__all__ = ["RUNTIME_DEFAULTS", "configure", "mute_rdkit_log", "runtime_environment"]
