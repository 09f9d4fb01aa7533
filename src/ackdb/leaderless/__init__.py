"""Leaderless replication: the coordinator's sans-IO cores (docs/leaderless.md).

``hlc`` issues versions; ``levels`` counts ONE / QUORUM / ALL; ``coordinator`` runs one
write or read as a state machine (its actions and results in ``actions``), ``scans`` one
page of SCAN / KEYS / DBSIZE; ``deletes`` resolves delete/update conflicts per deletion
strategy; ``hints`` keeps writes for unreachable replicas; ``antientropy`` compares
replicas' hash trees; ``tombstones`` decides when a delete's trace may go. The record and
its merge live in ``keyspace/lww.py``, shared with the replica's commands
(``commands/leaderless.py``).
"""
