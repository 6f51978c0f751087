"""admet package."""

