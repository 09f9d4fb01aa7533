"""resp package."""
