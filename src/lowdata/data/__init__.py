"""Data: image files read safely (:mod:`~lowdata.data.images`), what a category holds
(:mod:`~lowdata.data.dataset`), its sources as one registry with layout detection (:mod:`~lowdata.data.sources`:
MVTec AD folders, MPDD, BTAD, MVTec AD 2, MVTec 3D-AD, MVTec LOCO AD, VisA, a folder of good and bad parts, one
module each, and the ELPV cells), the MVTec AD download, and the augmentation policies with their seeded copies
(:mod:`~lowdata.data.augment`, imgaug through :mod:`~lowdata.data.imgaug_compat`)."""
