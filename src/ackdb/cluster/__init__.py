"""Cluster metadata: the state machine applied from the Raft log (sans-IO)."""
