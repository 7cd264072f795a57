"""The engine is a set of parts whose imports run one way, each saying what state it owns."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import hookmq.engine

PACKAGE = "hookmq.engine"
ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def engine_modules() -> dict[str, Path]:
    """Every module of the engine package, by its short name, with its file."""
    modules = {}
    for info in pkgutil.iter_modules(hookmq.engine.__path__):
        spec = importlib.util.find_spec(f"{PACKAGE}.{info.name}")
        assert spec is not None and spec.origin is not None
        origin = Path(spec.origin)
        # A compiled build loads the extension; its source is installed beside it.
        modules[info.name] = origin if origin.suffix == ".py" else origin.parent / f"{info.name}.py"
    return modules


def imported_engine_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The engine modules one module imports anywhere: at the top, in functions, under TYPE_CHECKING."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from .x import y / from . import x
                base = node.module
                targets = [base] if base else [alias.name for alias in node.names]
            elif node.level == 0 and node.module and node.module.startswith(PACKAGE + "."):
                targets = [node.module[len(PACKAGE) + 1:]]
            elif node.level == 0 and node.module == PACKAGE:
                targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            targets = [alias.name[len(PACKAGE) + 1:] for alias in node.names if alias.name.startswith(PACKAGE + ".")]
        found.update(target.split(".")[0] for target in targets if target.split(".")[0] in known)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = engine_modules()
    known = set(modules)
    return {name: imported_engine_modules(name, path, known) for name, path in modules.items() if name != "__init__"}


def test_the_graph_walk_sees_the_engine_modules() -> None:
    graph = import_graph()
    # A walk that found nothing would pass the cycle test trivially.
    assert {"broker", "router", "delivery", "lifecycle", "connection", "protocol", "persistence"} <= set(graph)
    assert "router" in graph["broker"] and "delivery" in graph["router"]


def test_no_import_cycle_among_engine_modules() -> None:
    graph = import_graph()
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        raise AssertionError(f"import cycle among engine modules: {' -> '.join(cycle.args[1])}") from None
    assert order[-1] == "broker"  # everything else is below the broker that wires it


def test_no_class_declares_attributes_under_type_checking() -> None:
    """Mixins declaring another file's attributes for the type checker are gone."""
    offenders = []
    for name, path in engine_modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ClassDef):
                continue
            for statement in node.body:
                if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
                    offenders.append(f"{name}.{node.name}")
    assert offenders == []


def test_no_engine_class_inherits_from_another_engine_module() -> None:
    """Parts are composed, not inherited (exceptions and dataclass records aside)."""
    modules = engine_modules()
    classes = {name: {n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)}
               for name, path in modules.items()}
    offenders = []
    for name, path in modules.items():
        others = set().union(*(names for module, names in classes.items() if module != name))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                offenders += [f"{name}.{node.name}({base.id})" for base in node.bases
                              if isinstance(base, ast.Name) and base.id in others]
    assert offenders == []


def test_every_part_says_what_state_it_owns_and_who_changes_it() -> None:
    missing = []
    for name, path in engine_modules().items():
        if name == "__init__":
            continue
        doc = " ".join((ast.get_docstring(ast.parse(path.read_text())) or "").split())
        if "State owned:" not in doc or not re.search(r"Who (may change|changes) it:", doc):
            missing.append(name)
    assert missing == []


def test_architecture_doc_lists_every_engine_module() -> None:
    text = ARCHITECTURE.read_text()
    section = text[text.index("### Inside the engine"):]
    section = section[:section.index("\n## ")]
    for name in engine_modules():
        if name != "__init__":
            assert f"`{name}.py`" in section, name


def test_architecture_doc_states_the_imports_exactly() -> None:
    """The arrows written in docs/architecture.md are the imports the code has."""
    text = ARCHITECTURE.read_text()
    section = text[text.index("Exactly (engine modules only;"):]
    section = " ".join(section[:section.index("\n\n")].split())
    written = {name: set(re.findall(r"`(\w+)`", targets))
               for name, targets in re.findall(r"`(\w+)` → ([^;.]+)", section)}
    graph = import_graph()
    assert written.pop("broker", None) is not None
    actual = {name: targets - {"settings", "stats"} for name, targets in graph.items()
              if name not in ("broker", "settings", "stats") and targets - {"settings", "stats"}}
    assert written == actual
