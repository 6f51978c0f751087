"""clinical_sim package."""

