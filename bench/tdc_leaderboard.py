"""Published TDC ADMET leaderboard top-1 per set: context for the benchmark table, never pass/fail.

Filled in from the sources named in ``LEADERBOARD_SOURCE``; a set whose number could not be
verified keeps ``value: None`` and is shown as "not verified".
"""

from __future__ import annotations

LEADERBOARD_SOURCE = "not yet filled"
LEADERBOARD_TOP1: dict[str, dict] = {}
