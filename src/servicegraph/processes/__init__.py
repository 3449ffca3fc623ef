"""processes layer."""
