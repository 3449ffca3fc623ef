"""Who is asking: API tokens, users and roles, and what each role may do.

Tokens are random (256 bits) and only their SHA-256 is stored, in the store itself, and looked up
on every request: a token revoked through one replica is refused by every replica at once. A token
may expire (``expires_in``); its last use is recorded at most once a minute per process. Roles:
``viewer`` reads; ``cmdb_editor`` also changes CIs and relationships; ``change_manager`` also
manages changes and releases; ``service_desk`` records and works incidents; ``problem_manager``
also manages problems and known errors; ``admin`` may do everything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from servicegraph.errors import Forbidden, NotFound, Problem, Unauthenticated, ValidationFailed
from servicegraph.graph.records import TokenRecord
from servicegraph.graph.store import GraphStore, utc_now
from servicegraph.graph.validation import check_name

__all__ = [
    "ROLES",
    "Actor",
    "authenticate",
    "create_token",
    "parse_duration",
    "require",
    "revoke_tokens",
    "token_hash",
]

ROLES = ("viewer", "cmdb_editor", "change_manager", "service_desk", "problem_manager", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "write_cmdb": frozenset({"cmdb_editor", "admin"}),
    "request_changes": frozenset({"cmdb_editor", "change_manager", "problem_manager", "admin"}),
    "manage_changes": frozenset({"change_manager", "admin"}),
    "work_incidents": frozenset({"service_desk", "problem_manager", "admin"}),
    "manage_problems": frozenset({"problem_manager", "admin"}),
    "admin": frozenset({"admin"}),
}
_BEARER = re.compile(r"\s*bearer\s+(\S+)\s*", re.IGNORECASE)  # RFC 7235: the scheme is caseless
_DURATION = re.compile(r"([0-9]+)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_TOUCH_EVERY = 60.0  # seconds between last-use updates of one token, per process
_touched: dict[str, float] = {}
_touched_lock = threading.Lock()


@dataclass(frozen=True)
class Actor:
    user: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def token_hash(token: str) -> str:
    """What the store keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``30m``, ``3600s``, ``2w`` or combinations (``1d12h``).

    >>> parse_duration("1d12h")
    datetime.timedelta(days=1, seconds=43200)
    """
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValidationFailed(
            [Problem("token", "expires_in", f"{text!r} is not a duration like 90d, 12h or 30m")]
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0 or seconds > 10 * 366 * 86400:
        raise ValidationFailed(
            [Problem("token", "expires_in", "must be more than 0 and at most 10 years")]
        )
    return dt.timedelta(seconds=seconds)


def create_token(
    store: GraphStore,
    user: str,
    role: str,
    actor: str = "cli",
    expires_in: dt.timedelta | None = None,
) -> str:
    """Create and store a token for ``user``; the token itself is returned once and never stored."""
    problems = check_name("token", "user", user, limit=200)
    if role not in ROLES:
        problems.append(Problem("token", "role", f"{role!r} is not one of {', '.join(ROLES)}"))
    if problems:
        raise ValidationFailed(problems)
    token = "sg_" + secrets.token_urlsafe(32)
    expires_at = None
    if expires_in is not None:
        expires_at = _iso(dt.datetime.now(dt.UTC) + expires_in)
    store.add_token(token_hash(token), user, role, actor, expires_at)
    return token


def authenticate(store: GraphStore, authorization: str | None) -> Actor:
    """The actor behind an ``Authorization: Bearer …`` header value."""
    found = _BEARER.fullmatch(authorization or "")
    if found is None:
        raise Unauthenticated(
            "send an Authorization: Bearer <token> header; create a token with "
            "`servicegraph token create --user U --role R`"
        )
    digest = token_hash(found.group(1))
    record = store.find_token(digest)
    if record is None:
        raise Unauthenticated("the bearer token is not known; create a new one")
    if record.revoked_at is not None:
        raise Unauthenticated(f"the bearer token was revoked at {record.revoked_at}")
    if record.expires_at is not None and record.expires_at <= utc_now():
        raise Unauthenticated(f"the bearer token expired at {record.expires_at}; create a new one")
    _touch(store, digest)
    return Actor(record.user, record.role)


def _touch(store: GraphStore, token_hash: str) -> None:
    """Note the token's last use, at most every _TOUCH_EVERY seconds (a write per request would
    serialize the readers behind the store's writer)."""
    clock = time.monotonic()
    with _touched_lock:
        if clock - _touched.get(token_hash, -_TOUCH_EVERY) < _TOUCH_EVERY:
            return
        _touched[token_hash] = clock
    store.touch_token(token_hash, utc_now())


def require(actor: Actor, permission: str) -> None:
    if not actor.may(permission):
        allowed = ", ".join(sorted(PERMISSIONS[permission]))
        raise Forbidden(
            f"{actor.user} ({actor.role}) may not {permission}; needs one of: {allowed}"
        )


def revoke_tokens(
    store: GraphStore,
    token_ids: Collection[str] = (),
    user: str | None = None,
    actor: str = "cli",
) -> list[TokenRecord]:
    """Revoke tokens by id (as ``token list`` shows them) and/or every token of ``user``.

    Returns the tokens that were live and are now revoked; an id that names no token is NOT_FOUND."""
    tokens = store.list_tokens()
    chosen: dict[str, TokenRecord] = {}
    for ident in token_ids:
        hits = [t for t in tokens if t.id == ident or t.hash == ident]
        if not hits:
            raise NotFound("token", ident)
        chosen.update((t.hash, t) for t in hits)
    if user is not None:
        chosen.update((t.hash, t) for t in tokens if t.user == user)
    live = [t for t in chosen.values() if t.revoked_at is None]
    if live:
        store.revoke_tokens([t.hash for t in live], actor, utc_now())
    return live


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
