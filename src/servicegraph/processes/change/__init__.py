"""Change management (ISO/IEC 20000-1 9.2, with clause 5 for major changes): ``lifecycle`` (the
RFC state machine, :class:`ChangeManager`), ``assessment`` (impact, risk factors), ``schedule``
(the forward schedule of change and its collisions) and ``policy`` (+ ``policy.yaml``)."""

from servicegraph.processes.change.lifecycle import ACTIONS, TRANSITIONS, ChangeManager

__all__ = ["ACTIONS", "TRANSITIONS", "ChangeManager"]
