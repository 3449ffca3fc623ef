"""Who is asking: API tokens, users and roles, and what each role may do.

Tokens are random (256 bits) and only their SHA-256 is stored, in the store itself so every API
replica sees the same users. Roles: ``viewer`` reads; ``cmdb_editor`` also changes CIs and
relationships; ``change_manager`` also manages changes and releases; ``admin`` may do everything.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from servicegraph.errors import Forbidden, Problem, Unauthenticated, ValidationFailed
from servicegraph.graph.store import GraphStore

__all__ = ["ROLES", "Actor", "authenticate", "create_token", "require"]

ROLES = ("viewer", "cmdb_editor", "change_manager", "admin")
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "write_cmdb": frozenset({"cmdb_editor", "admin"}),
    "request_changes": frozenset({"cmdb_editor", "change_manager", "admin"}),
    "manage_changes": frozenset({"change_manager", "admin"}),
    "admin": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Actor:
    user: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(store: GraphStore, user: str, role: str, actor: str = "cli") -> str:
    """Create and store a token for ``user``; the token itself is returned once and never stored."""
    problems = []
    if role not in ROLES:
        problems.append(Problem("token", "role", f"{role!r} is not one of {', '.join(ROLES)}"))
    if not user.strip():
        problems.append(Problem("token", "user", "required: a non-empty user name"))
    if problems:
        raise ValidationFailed(problems)
    token = "sg_" + secrets.token_urlsafe(32)
    store.add_token(_hash(token), user, role, actor)
    return token


def authenticate(store: GraphStore, authorization: str | None) -> Actor:
    """The actor behind an ``Authorization: Bearer …`` header value."""
    if not authorization or not authorization.startswith("Bearer "):
        raise Unauthenticated(
            "send an Authorization: Bearer <token> header; create a token with "
            "`servicegraph token create --user U --role R`"
        )
    found = store.find_token(_hash(authorization.removeprefix("Bearer ").strip()))
    if found is None:
        raise Unauthenticated("the bearer token is not known; create a new one")
    return Actor(*found)


def require(actor: Actor, permission: str) -> None:
    if not actor.may(permission):
        allowed = ", ".join(sorted(PERMISSIONS[permission]))
        raise Forbidden(
            f"{actor.user} ({actor.role}) may not {permission}; needs one of: {allowed}"
        )
