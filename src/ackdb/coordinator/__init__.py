"""The leaderless coordinator process (shell)."""
