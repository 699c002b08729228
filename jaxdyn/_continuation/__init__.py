"""Numerical continuation of equilibria and their bifurcations (see `_api.py`)."""
