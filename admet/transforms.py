"""Per-endpoint value transforms: the model learns ``log10(value)``, the user gets the catalog's unit back.

The catalog (``datasets/catalog.csv``, column ``transform``) names one per endpoint: ``none`` or ``log10``
(VDss, half-life, clearances: values spanning orders of magnitude). :func:`forward` is applied to the labels
before training (censoring bounds too: the map is monotone), the model and its calibration live on the
transformed scale, and :func:`inverse_prediction` maps a prediction back:

* mean -> ``10**mu``: the median (geometric mean) of the predictive distribution on the catalog's scale,
  not its arithmetic mean;
* interval bounds -> ``10**lo``, ``10**hi``: exact, a monotone map keeps the coverage;
* std -> the delta-method approximation ``ln(10) * 10**mu * sd``.
"""

from __future__ import annotations

import logging

import numpy as np

from pipelines.errors import InputError

log = logging.getLogger(__name__)

NONE = "none"
LOG10 = "log10"
TRANSFORMS = (NONE, LOG10)


def check_transform(name: str) -> str:
    """``name`` if it is a known transform (empty means ``none``), else :class:`InputError`."""
    name = name or NONE
    if name not in TRANSFORMS:
        raise InputError(f"unknown value transform {name!r}; known: {list(TRANSFORMS)}")
    return name


def forward(values: np.ndarray, name: str, endpoint: str = "") -> np.ndarray:
    """Labels on the model's scale. ``log10`` of a value <= 0 is undefined: NaN (label dropped, logged)."""
    name = check_transform(name)
    values = np.asarray(values, dtype=float)
    if name == NONE:
        return values.copy()
    bad = np.isfinite(values) & (values <= 0)
    if bad.any():
        log.warning("%s: %d value(s) <= 0 cannot be log10-transformed and are left out", endpoint or "endpoint",
                    int(bad.sum()))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(bad, np.nan, np.log10(np.where(bad, 1.0, values)))


def inverse(values: np.ndarray, name: str) -> np.ndarray:
    """Model-scale values (means, interval bounds) back on the catalog's scale."""
    name = check_transform(name)
    values = np.asarray(values, dtype=float)
    if name == NONE:
        return values
    with np.errstate(over="ignore"):
        return np.power(10.0, values)


def inverse_std(mu: np.ndarray, sd: np.ndarray, name: str) -> np.ndarray:
    """A model-scale std on the catalog's scale (delta method around ``mu``)."""
    name = check_transform(name)
    sd = np.asarray(sd, dtype=float)
    if name == NONE:
        return sd
    with np.errstate(over="ignore"):
        return np.log(10.0) * np.power(10.0, np.asarray(mu, dtype=float)) * sd
