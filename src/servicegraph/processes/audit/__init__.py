"""Configuration audit (ISO/IEC 20000-1 9.1): :mod:`.health` (completeness, correctness and
compliance scores with their findings) on the rules of :mod:`.policy` (+ ``policy.yaml``)."""
