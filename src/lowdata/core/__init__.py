"""The ground floor, imported by every layer and importing none: the one exception type users see
(:mod:`~lowdata.core.errors`), atomic writes (:mod:`~lowdata.core.atomic`), exclusive locks
(:mod:`~lowdata.core.locks`), content digests (:mod:`~lowdata.core.digests`), the schema of the JSON
lowdata reads back (:mod:`~lowdata.core.schema`) and what the machine offers (:mod:`~lowdata.core.machine`)."""
