"""Tiny linear-regression Flower app (numpy only) for the deployment tests."""
