"""Anomaly detectors on frozen features.

- the protocol every detector follows (:mod:`~lowdata.detectors.base`), its parameters' declarations
  (:mod:`~lowdata.detectors.params`), what it reads (:mod:`~lowdata.detectors.inputs`) and its heatmaps
  (:mod:`~lowdata.detectors.heatmaps`);
- one module per detector (``knn``, ``mahalanobis``, ``padim``, ``patchcore``) and the registry that is the
  one list of methods (:mod:`~lowdata.detectors.registry`);
- what they share: the Gaussian banks (:mod:`~lowdata.detectors.gaussian`, fitted by
  :mod:`~lowdata.detectors.gaussian_fit` into one of :mod:`~lowdata.detectors.gaussian_forms`, with the
  arithmetic of :mod:`~lowdata.detectors.covariance` and the samples read by
  :mod:`~lowdata.detectors.location_blocks`), the k-center sampler (:mod:`~lowdata.detectors.kcenter`), and
  out-of-fold fitting (:mod:`~lowdata.detectors.crossfit`).

Detectors take arrays or anything with pooled vectors and spatial maps; they import no other layer than
``core``."""
