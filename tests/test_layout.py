"""The code's shape, checked: no import cycle, small modules and classes, no local mode at runtime.

These are the structural rules of docs/architecture.md; a change that breaks one fails here
instead of in a review.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "cdk_sagemaker_rl"
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every library module ``name`` imports, at module level or inside functions alike."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in known:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def test_no_import_cycles() -> None:
    graph = _graph()
    # A package importing its own submodules (re-exports) is not a cycle of concepts.
    edges = {
        name: {t for t in targets if not t.startswith(f"{name}.")}
        for name, targets in graph.items()
    }
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target, [*stack, target])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_a_cycle_would_be_found() -> None:
    known = {"cdk_sagemaker_rl.a", "cdk_sagemaker_rl.b"}
    path = PACKAGE / "errors.py"  # any file: only its parse result matters below
    assert _imports("cdk_sagemaker_rl.errors", path, known | {"cdk_sagemaker_rl.errors"}) == set()
    tree_text = "def f():\n    from .b import x\n"
    probe = PACKAGE.parent / "build" / "probe_a.py"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text(tree_text)
    try:
        assert _imports("cdk_sagemaker_rl.a", probe, known) == {"cdk_sagemaker_rl.b"}
    finally:
        probe.unlink()


def test_modules_and_classes_stay_small() -> None:
    too_big = []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > MAX_MODULE_LINES:
            too_big.append((name, len(text.splitlines())))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_CLASS_LINES:
                    too_big.append((f"{name}.{node.name}", length))
    assert too_big == []


def test_the_runtime_library_never_imports_local_mode() -> None:
    graph = _graph()
    runtime = [name for name in graph if not name.startswith("cdk_sagemaker_rl.local")]
    offenders = {
        name: sorted(t for t in graph[name] if t.startswith("cdk_sagemaker_rl.local"))
        for name in runtime
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_serving_and_observability_never_import_training() -> None:
    """The documented direction (docs/architecture.md): training feeds serving through the
    estimator, so serving (and monitoring) can serve any artifact without the training code."""
    graph = _graph()
    found = {
        name: sorted(t for t in targets if t.startswith("cdk_sagemaker_rl.training"))
        for name, targets in graph.items()
        if name.startswith(("cdk_sagemaker_rl.serving", "cdk_sagemaker_rl.observability"))
    }
    assert {name: targets for name, targets in found.items() if targets} == {}
