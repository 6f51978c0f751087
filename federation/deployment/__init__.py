"""Deployment Engine helpers: certificates, SuperNode keys, SuperLink/SuperNode processes, run submission."""
