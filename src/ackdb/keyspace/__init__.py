"""keyspace package."""
