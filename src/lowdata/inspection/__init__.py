"""The product: an inspection model fitted on a few good images, its threshold set from them alone
(:mod:`~lowdata.inspection.threshold`), saved and loaded as a checked folder (:mod:`~lowdata.inspection.store`),
scoring new images with verdicts and heatmap overlays (:mod:`~lowdata.inspection.model`,
:mod:`~lowdata.inspection.overlays`). It stands beside ``experiments``, never importing it."""
