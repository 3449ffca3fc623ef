"""Availability (ISO/IEC 20000-1 6.3): what availability a service can reach from its model.

``structure`` reads the engine's failure semantics as the service's structure function over its
dependency closure; ``exact`` computes it with a binary decision diagram (Monte Carlo past a stated
size); ``analysis`` adds single points of failure, minimal cut sets, importance and what-ifs.
"""

from servicegraph.processes.availability.analysis import AvailabilityResult, availability

__all__ = ["AvailabilityResult", "availability"]
