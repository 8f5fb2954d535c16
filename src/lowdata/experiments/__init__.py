"""The research: the sample-size study (:mod:`~lowdata.experiments.study`), polluted training sets and their
refinement (:mod:`~lowdata.experiments.pollution`, :mod:`~lowdata.experiments.refine`) and the measurement of
threshold rules on held-out images (:mod:`~lowdata.experiments.thresholds`). It stands beside
``inspection``, never importing it."""
