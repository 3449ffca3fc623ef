"""Timestamps as the records keep them: ISO 8601 text, UTC, whole seconds, ``Z``."""

from __future__ import annotations

import datetime as dt

from servicegraph.errors import Problem, ValidationFailed

__all__ = ["iso", "parse", "time_of"]


def parse(text: str) -> dt.datetime:
    """An aware datetime (naive text is taken as UTC); a bad value is a validation error."""
    try:
        value = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            [Problem("time", str(text), "not an ISO 8601 datetime")], wrote=False
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(value: dt.datetime | None = None) -> str:
    """``value`` (default: now) as record text."""
    value = value or dt.datetime.now(dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def time_of(value: object) -> dt.datetime | None:
    """A stored timestamp as an aware datetime; None when absent or unreadable (a record's
    optional time, read by an analysis that must not fail on one bad value)."""
    try:
        return parse(value) if value else None  # type: ignore[arg-type]
    except ValidationFailed:
        return None
