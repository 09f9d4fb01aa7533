"""Deterministic simulation of a Raft cluster (see docs/consensus.md, "The simulator").

One seed builds the world -- cluster size, network faults, crashes, clock drift, client
load -- and runs it on a virtual clock; the same seed replays the same run exactly. Used
by tests/sim; never imported by the server.
"""
