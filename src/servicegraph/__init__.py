"""servicegraph."""
