"""Prefect flows that compose the other packages, and the ``fedadmet`` command line.

Importing this package changes nothing global: the command line (or a library user, through
``pipelines.configure()``) applies the runtime defaults.
"""
