"""Partition defaults shared by light modules (``federation.config`` must not import pandas or RDKit)."""

#: The endpoint floor of every simulated consortium the product builds (``fedadmet federate``, ``make demo``,
#: ``fedadmet data partition``): 100 rows of one endpoint give a partner ~10 test labels under the keyed
#: 80/10/10 folds (given the simulation's fold key, the floor counts those test labels: ``pipelines.partition``,
#: step 6). On the demo's panel, without it, 2 of 20 partners had 3 test compounds and could not be scored.
SCORABLE_ENDPOINT_ROWS = 100
