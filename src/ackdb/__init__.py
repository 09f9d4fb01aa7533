"""ackdb: a replicated key-value database that speaks the Redis protocol."""

__version__ = "0.1.0"
# The Redis version ackdb reports and matches in replies and error texts.
REDIS_COMPAT_VERSION = "7.2.4"
