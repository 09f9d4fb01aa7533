"""Primary/replica replication, WAIT, WAITAOF and FAILOVER as sans-IO cores.

``engine.Replication`` is the one object the server shell drives; the modules below it
are the cores it wires together (see docs/replication.md). Nothing in this package
touches sockets, files, clocks, threads or module-level randomness.
"""
