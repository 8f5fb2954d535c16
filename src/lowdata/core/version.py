"""The package's version (model files record it; Dask workers are checked against it)."""

__version__ = "0.1.0"
