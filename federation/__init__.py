"""federation package."""

