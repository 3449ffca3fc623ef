"""The change policy as data: loaded from ``policy.yaml`` (shipped) and optionally a user's
file named by ``SERVICEGRAPH_CHANGE_POLICY`` whose top-level keys replace the shipped ones."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servicegraph.errors import ModelError
from servicegraph.processes.policy_files import read_policy

__all__ = ["ChangePolicy", "load_policy"]

_TYPE_KEYS = {"description", "approver_roles", "skip_assessment", "may_skip_schedule",
              "min_lead_time_hours"}  # fmt: skip


@dataclass(frozen=True)
class ChangePolicy:
    controlled_classes: tuple[str, ...]
    major_impact: dict[str, Any]
    change_types: dict[str, dict[str, Any]]
    risk: dict[str, Any]

    def approvers(self, change_type: str) -> list[str]:
        return list(self.change_types[change_type].get("approver_roles", []))

    def flag(self, change_type: str, name: str) -> bool:
        return bool(self.change_types[change_type].get(name, False))

    def min_lead_hours(self, change_type: str) -> float:
        return float(self.change_types[change_type].get("min_lead_time_hours", 0))


def load_policy(path: str | Path | None = None) -> ChangePolicy:
    raw, where = read_policy("servicegraph.processes.change", "policy.yaml",
                             "SERVICEGRAPH_CHANGE_POLICY", "change policy", path)  # fmt: skip
    problems = []
    for name, body in (raw.get("change_types") or {}).items():
        if not isinstance(body, dict) or not set(body) <= _TYPE_KEYS:
            problems.append(f"change type {name!r}: keys must be among {sorted(_TYPE_KEYS)}")
    for key in ("standard", "normal", "emergency"):
        if key not in (raw.get("change_types") or {}):
            problems.append(f"change_types must define {key!r}")
    if problems:
        raise ModelError(problems, where)
    return ChangePolicy(
        controlled_classes=tuple(raw.get("controlled_classes") or ["ci"]),
        major_impact=dict(raw.get("major_impact") or {}),
        change_types=dict(raw["change_types"]),
        risk=dict(raw.get("risk") or {}),
    )
