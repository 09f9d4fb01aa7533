"""Persistence: the snapshot format, the append-only file and their files on disk."""
