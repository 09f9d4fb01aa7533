"""The single-node engine: the keyspace owner, dispatch, clients, blocking, Pub/Sub,
keyspace notifications, effects and the command gate.

Never imports asyncio, sockets, threads or files and never reads a clock: time comes in
through the ``Clock`` port; replication, persistence, configuration and INFO's process
facts reach it through the typed ports in ``engine.ports``. ``server/`` is the asyncio
shell that hosts it; ``commands/`` holds the handlers it runs.
"""
