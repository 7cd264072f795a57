"""The example store of docs/writing_stores.md passes the contract suite, as the page claims."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from hookmq.store.base import Store
from hookmq.testing.store_contract import StoreContract, StoreFactory

DOC = Path(__file__).resolve().parents[2] / "docs" / "writing_stores.md"


def _load_example() -> ModuleType:
    """Import the first ```python block of the page as a module."""
    match = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert match is not None, f"no python code block in {DOC}"
    spec = importlib.util.spec_from_loader("writing_stores_example", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and annotations resolve through sys.modules
    exec(compile(match.group(1), str(DOC), "exec"), module.__dict__)
    return module


EXAMPLE = _load_example()


def test_example_is_a_store() -> None:
    assert issubclass(EXAMPLE.JsonFileStore, Store)
    assert EXAMPLE.JsonFileStore.name == "jsonfile"


class TestDocumentedJsonFileStore(StoreContract):
    """The documented minimal store, persistent across store objects through its JSON file."""

    @pytest.fixture
    def store_factory(self, tmp_path: Path) -> StoreFactory:
        return lambda: EXAMPLE.JsonFileStore(tmp_path / "state.json")
