"""Features: frozen ImageNet backbones behind one protocol (:mod:`~lowdata.features.base`) and their
registry (:mod:`~lowdata.features.backbones`), the on-disk embedding cache (:mod:`~lowdata.features.cache`:
pooled vectors per image) and the feature packs that are the one home of the spatial maps, checksummed and
read memory-mapped (:mod:`~lowdata.features.packs`), encoding through them (:mod:`~lowdata.features.encode`),
a category's feature pool with augmented copies (:mod:`~lowdata.features.pool`), and what ``lowdata cache``
lists and frees (:mod:`~lowdata.features.manage`). Maps detectors read the packs through
:func:`~lowdata.features.embeddings.map_rows` (:class:`~lowdata.core.grids.MapRows`). Nothing here knows a
detector."""
