"""The node (``ackdb node``): a host of services; today the Raft member serving the cluster
metadata store and its client port.

Modules: ``agent`` (the host: starts, drains and stops the services), ``service`` (the
contracts between host and services), ``member`` (the Raft member service: its asyncio
loop around the shared ``consensus.driver.RaftDriver``), ``clientport`` and
``metaserver`` (the metadata client port and its connections), ``membership`` (following
configuration changes, ``--join``), ``transport``, ``inbound`` and ``peerframes`` (peer
links and their frames), ``peerauth`` (the links' handshake, sans-IO), ``secrets`` (the
cluster secret and what is derived from it), ``raftstore`` (the durable Raft log),
``status`` (``INFO``), ``options``, ``cli_cluster`` and ``cli_secret`` (``ackdb node`` /
``ackdb cluster``), ``localcluster`` (a private cluster for tests and benchmarks),
``client`` (RESP clients). Decisions live in ``ackdb.cluster``.
"""
