"""Features: frozen ImageNet backbones behind one protocol (:mod:`~lowdata.features.base`) and their
registry (:mod:`~lowdata.features.backbones`), the on-disk embedding cache, encoding through it
(:mod:`~lowdata.features.encode`), and a category's feature pool with augmented copies
(:mod:`~lowdata.features.pool`). Nothing here knows a detector."""
