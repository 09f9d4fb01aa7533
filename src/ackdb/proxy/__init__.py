"""The proxy endpoint of a sharded database: the data path between clients and shards.

Sans-IO cores: ``router`` (each command's route, slots), ``session`` (one client
connection: order, routing, shard connections' sinks), ``fanout`` (split / fan-out / SCAN /
WAIT / INFO), ``txn`` (MULTI, WATCH), ``local`` (commands the endpoint answers), ``merge``
and ``replies`` (raw reply boundaries and merges). Shells: ``shell`` (asyncio listener,
client and shard connections, topology feed), ``main`` (the ``ackdb proxy`` process),
``log``. docs/proxy.md describes the endpoint.
"""
