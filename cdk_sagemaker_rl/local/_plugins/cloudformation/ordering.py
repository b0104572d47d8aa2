"""Dependency order of a template's resources, as CloudFormation derives it.

moto follows ``DependsOn`` only; CloudFormation also orders by ``Ref``, ``Fn::GetAtt`` and
``Fn::Sub`` references, so a resource that reads another's attribute is created after it (and
deleted before it).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["dependency_order"]

_SUB_REFERENCE = re.compile(r"\$\{([^!}][^}]*)\}")


def _references(value: Any, found: set[str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                if isinstance(inner, list) and inner and isinstance(inner[0], str):
                    found.add(inner[0])
                elif isinstance(inner, str):
                    found.add(inner.split(".", 1)[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    found.update(m.split(".", 1)[0] for m in _SUB_REFERENCE.findall(text))
                if isinstance(inner, list) and len(inner) > 1:
                    _references(inner[1], found)
            else:
                _references(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _references(inner, found)


def _dependencies(resources: dict[str, Any]) -> dict[str, list[str]]:
    graph: dict[str, list[str]] = {}
    for name, definition in resources.items():
        found: set[str] = set()
        depends = definition.get("DependsOn", [])
        found.update([depends] if isinstance(depends, str) else depends)
        _references(definition.get("Properties", {}), found)
        graph[name] = [dep for dep in resources if dep in found and dep != name]
    return graph


def dependency_order(resources: dict[str, Any]) -> list[str]:
    """Resource names with every dependency before its dependents (template order otherwise)."""
    graph = _dependencies(resources)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name):
            return  # done, or a cycle: CloudFormation would reject the template
        state[name] = 1
        for dep in graph[name]:
            visit(dep)
        state[name] = 2
        order.append(name)

    for name in resources:
        visit(name)
    return order
