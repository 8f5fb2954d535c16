"""Features: frozen ImageNet backbones behind one protocol (:mod:`~lowdata.features.base`) and their
registry (:mod:`~lowdata.features.backbones`), the on-disk embedding cache, encoding through it
(:mod:`~lowdata.features.encode`), a category's feature pool with augmented copies
(:mod:`~lowdata.features.pool`), and the feature store of its aligned maps, memory-mapped
(:mod:`~lowdata.features.store`). Nothing here knows a detector."""
