"""The node agent (``ackdb node``): a Raft member over TCP with the cluster metadata store.

Modules: ``peerframes`` (wire frames between members), ``transport`` (peer links),
``proposer`` (client commands to the log and back), ``agent`` (the Raft loop),
``metaserver`` (the client port), ``cli_cluster`` (``ackdb node`` / ``ackdb cluster``),
``raftstore`` (the durable Raft log, owned by the consensus work).
"""
