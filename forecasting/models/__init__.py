"""Forecasting models, one per file; registered by name in ``forecasting.registry``."""
