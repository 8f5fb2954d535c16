"""Choosing the augmentation policy automatically, from good images only: the search space
(:mod:`lowdata.autoaug.space`) and the search (:mod:`lowdata.autoaug.search`)."""
