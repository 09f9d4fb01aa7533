"""Leaderless replication: the coordinator's sans-IO cores (docs/leaderless.md).

``hlc`` issues versions; ``levels`` counts ONE / QUORUM / ALL; ``coordinator`` runs one
write, read or scan as a state machine; ``hints`` keeps writes for unreachable replicas;
``antientropy`` compares replicas' hash trees; ``tombstones`` decides when a delete's
trace may go. The record and its merge live in ``keyspace/lww.py``, shared with the
replica's commands (``commands/leaderless.py``).
"""
