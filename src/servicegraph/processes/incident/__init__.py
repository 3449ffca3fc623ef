"""Incident and problem management (ISO/IEC 20000-1 8.1, 8.2) on the graph.

- :mod:`.policy` (+ ``policy.yaml``): impact levels, the priority matrix, major-incident criteria,
  default SLA targets, the change window and the root-cause scoring points, as data;
- :mod:`.priority`: an incident's impact snapshot, impact level, priority and major flag;
- :mod:`.lifecycle`: recording, bulk intake and the incident state machine;
- :mod:`.timers`: response and resolution clocks, breaches computed when asked;
- :mod:`.correlation`: known-error suggestions and change-induced incidents;
- :mod:`.problem`: problems, known errors, RFCs from problems, effectiveness;
- :mod:`.rca`: root-cause ranking and grouping;
- :mod:`.trends`: the incident frame, trends, MTTR/MTBF, recurring CIs;
- :mod:`.demo_history`: a year of realistic incident history for the demo estate.
"""
