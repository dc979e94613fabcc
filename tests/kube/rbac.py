"""RBAC authorization for the strict emulator: ClusterRole and Role rules, as the API server applies them.

A request maps to (apiGroup, resource[/subresource], verb, namespace, name);
it is allowed when any ClusterRole rule, or any Role rule of the request's
namespace, names its group, resource and verb (or ``*``) and, when the rule
lists resourceNames, the object's name (never for ``create``). Otherwise
403 Forbidden with the API server's wording. Used by tests/kube/emulator/.
"""

from __future__ import annotations

from typing import Any

from tests.kube.apimodel import ApiError, Parsed

Grant = tuple[str, str | None, dict[str, Any]]  # (Role kind, Role namespace, rule)


def verb_of(method: str, query: dict[str, str], named: bool) -> str:
    """The RBAC verb of an HTTP request."""
    if method == "GET":
        return "watch" if query.get("watch") in ("true", "1") else ("get" if named else "list")
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}.get(method, "?")


def authorize(grants: list[Grant], user: str, method: str, query: dict[str, str], p: Parsed) -> None:
    """Return when ``grants`` allow the request, raise ApiError(403) otherwise."""
    verb = verb_of(method, query, p.name is not None)
    res = f"{p.rtype.plural}/{p.sub}" if p.sub else p.rtype.plural
    for kind, namespace, rule in grants:
        if kind == "Role" and namespace != p.namespace:
            continue
        names = rule.get("resourceNames") or []
        if (
            (p.rtype.group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
            and (res in rule.get("resources", []) or "*" in rule.get("resources", []))
            and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
            and (not names or (p.name in names and verb != "create"))
        ):
            return
    where = f' in the namespace "{p.namespace}"' if p.namespace else " at the cluster scope"
    raise ApiError(
        403,
        "Forbidden",
        f'{p.rtype.plural} is forbidden: User "{user}" cannot {verb} resource "{res}" in API group '
        f'"{p.rtype.group}"{where}',
    )
