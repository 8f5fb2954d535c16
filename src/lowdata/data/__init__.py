"""Data: image files read safely (:mod:`~lowdata.data.images`), what a category holds
(:mod:`~lowdata.data.dataset`), its sources, MVTec AD folders and the ELPV cells, as one registry
(:mod:`~lowdata.data.sources`), the MVTec AD download, and the augmentation policies with their
seeded copies (:mod:`~lowdata.data.augment`, imgaug through :mod:`~lowdata.data.imgaug_compat`)."""
