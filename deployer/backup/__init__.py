"""Database safety: dumps of the pgvector database, their catalogue, verification, restore and retention.

Pure core: `naming` (file names, metadata), `retention` (what to keep), `schedule` (when the next dump is due).
Edges: `pgexec` is the only module that runs anything in a container; `scratch` owns throwaway servers.
Flows: `dump`, `verify`, `restore`, `service` (dump + verify + webhook), `cli`.
"""
