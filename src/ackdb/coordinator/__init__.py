"""The ``ackdb coordinator`` process: a leaderless database's endpoint on one node.

SHELL PACKAGE (sockets, timers, the event loop, files, signals). Every decision is in
``leaderless/`` (the per-request cores, the user commands' plans, the session); this
package carries them out: ``main`` (the process, the topology feed), ``endpoint`` (the
listener and client connections), ``links`` (one pipelined connection per replica),
``runner`` (runs the cores' actions over the links; hints and their replay), ``ports``
(the anti-entropy seam). See docs/leaderless.md.
"""
