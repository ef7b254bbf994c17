"""Fit the hbm family's efficiency parameters on the validation suite (see ``fit.py``)."""
