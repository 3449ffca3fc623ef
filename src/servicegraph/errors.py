"""The few domain errors servicegraph raises, each saying what was wrong and what to do.

Every error carries a stable ``code`` (used as the GraphQL error type and in JSON output) and an
``exit_code`` the CLI returns, so scripts can act on the failure without parsing messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Forbidden",
    "ModelError",
    "NotFound",
    "Problem",
    "RuleViolation",
    "ServiceGraphError",
    "StaleVersion",
    "StoreBusy",
    "StoreCorrupt",
    "StoreUnavailable",
    "Unauthenticated",
    "ValidationFailed",
]

MAX_REPORTED_PROBLEMS = 100  # an error lists this many problems, then says how many more


class ServiceGraphError(Exception):
    """Base of every expected failure."""

    code = "ERROR"
    exit_code = 1

    @property
    def extensions(self) -> dict[str, Any]:
        """What GraphQL clients receive in ``errors[].extensions`` (graphql-core copies it)."""
        return {"code": self.code}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where (``location``), which ``field``, and why (``reason``)."""

    location: str
    field: str
    reason: str

    def __str__(self) -> str:
        if self.location == self.field:
            return f"{self.field}: {self.reason}"
        return f"{self.location}: {self.field}: {self.reason}"


class ValidationFailed(ServiceGraphError):
    """The input breaks the model or the graph's rules; nothing was written."""

    code = "VALIDATION_FAILED"
    exit_code = 1

    def __init__(self, problems: list[Problem], wrote: bool = True) -> None:
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        tail = ", nothing was written" if wrote else ""
        super().__init__(f"{len(problems)} problem(s){tail}:\n{shown}{more}")

    @property
    def extensions(self) -> dict[str, Any]:
        """The first :data:`MAX_REPORTED_PROBLEMS` problems and the total (a request naming
        300,000 unknown ids gets a short answer, not a 26 MB one)."""
        problems = [
            {"location": p.location, "field": p.field, "reason": p.reason}
            for p in self.problems[:MAX_REPORTED_PROBLEMS]
        ]
        return {"code": self.code, "problems": problems, "problemCount": len(self.problems)}


class ModelError(ServiceGraphError):
    """The model file itself is inconsistent (unknown parent, bad type, dangling class …)."""

    code = "MODEL_INVALID"
    exit_code = 1

    def __init__(self, problems: list[str], source: str = "model") -> None:
        self.problems = problems
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


class NotFound(ServiceGraphError):
    """An id that names nothing in the store."""

    code = "NOT_FOUND"
    exit_code = 4

    def __init__(self, kind: str, ident: str) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} does not exist; check the id (ids are case-sensitive)")


class StaleVersion(ServiceGraphError):
    """An update carried a version other than the stored one: someone else wrote first."""

    code = "STALE_VERSION"
    exit_code = 5

    def __init__(self, ident: str, expected: int, actual: int | None) -> None:
        self.ident = ident
        self.expected = expected
        self.actual = actual
        if expected == 0 and actual is not None:
            message = (
                f"{ident!r} already exists (version {actual}); to update it, give the version "
                "you read (or none), or choose another id"
            )
        else:
            message = (
                f"{ident!r}: the write expected version {expected} but the store holds "
                f"{'nothing' if actual is None else f'version {actual}'}; re-read it and apply "
                "your change to the current version"
            )
        super().__init__(message)


class StoreUnavailable(ServiceGraphError):
    """The store could not be opened or reached."""

    code = "STORE_UNAVAILABLE"
    exit_code = 3


class StoreBusy(StoreUnavailable):
    """Another writer holds the store: its write lock past the write timeout (SQLite), or a bulk
    write's lease (Neo4j, see :mod:`servicegraph.graph.neo4j_bulk`)."""

    code = "STORE_BUSY"
    exit_code = 3


class StoreCorrupt(StoreUnavailable):
    """The store's file is damaged (``database disk image is malformed``)."""

    code = "STORE_CORRUPT"
    exit_code = 3


class Unauthenticated(ServiceGraphError):
    """No valid bearer token came with the request."""

    code = "UNAUTHENTICATED"
    exit_code = 6


class Forbidden(ServiceGraphError):
    """The caller's role does not allow this."""

    code = "FORBIDDEN"
    exit_code = 7


class RuleViolation(ServiceGraphError):
    """A process rule refuses the request (illegal transition, missing remediation plan …)."""

    code = "RULE_VIOLATION"
    exit_code = 8

    def __init__(self, rule: str, message: str) -> None:
        self.rule = rule
        super().__init__(f"{message} (rule: {rule}); nothing was written")

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, "rule": self.rule}
