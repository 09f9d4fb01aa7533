"""A small Jepsen-style harness for ackdb: record histories of client operations against
real processes, inject faults (nemeses), and check the histories afterwards.

Modules:
- ``history``: the operation record, the thread-safe recorder, JSON-lines files.
- ``procs``: ackdb processes that can be killed, paused and restarted on the same port and
  data directory, optionally inside a network namespace or under libfaketime.
- ``netns``: a private network of namespaces joined by a bridge; iptables partitions.
- ``nemesis``: faults with start/stop, composed and scheduled from a seed.
- ``workloads``: client worker threads (replicated lists, Raft registers).
- ``checkers``: durability per acknowledgement level, linearizability, convergence.
- ``trio``: a primary with replicas, promotion, AOF inspection.
- ``report``: what a failing scenario prints (seed, schedule, history, replay command).

Nothing here is imported by ``src/ackdb``; it drives the product from outside.
"""
