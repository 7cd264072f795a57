"""docs/conformance.md only names tests that exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "conformance.md"
REFERENCE = re.compile(r"(tests/[\w/]+\.py)::(test_\w+)")


def defined_tests(path: Path) -> set[str]:
    """Names of the test functions defined at the top level of a test module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")}


def test_conformance_doc_names_existing_tests() -> None:
    references = REFERENCE.findall(DOC.read_text(encoding="utf-8"))
    assert len(references) > 50, "the conformance table lost its rows"
    missing = [f"{path}::{name}" for path, name in references
               if not (ROOT / path).is_file() or name not in defined_tests(ROOT / path)]
    assert missing == []


def test_every_engine_feature_section_present() -> None:
    text = DOC.read_text(encoding="utf-8")
    for heading in ("## Connections", "## Messages", "## Bad input", "## Listeners and shutdown",
                    "## amqtt regressions", "## Not supported, and deviations"):
        assert heading in text
