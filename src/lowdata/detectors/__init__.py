"""Anomaly detectors on frozen features: the protocol every detector follows (:mod:`~lowdata.detectors.base`),
one module per detector (``knn``, ``mahalanobis``, ``padim``), the Gaussian banks they share, the registry
that is the one list of methods (:mod:`~lowdata.detectors.registry`) and out-of-fold fitting
(:mod:`~lowdata.detectors.crossfit`). Detectors take arrays or anything with pooled vectors and spatial
maps; they import no other layer than ``core``."""
