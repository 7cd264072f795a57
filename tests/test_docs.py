"""Tests that keep the documentation honest: hooks, configuration reference, flags, fixtures."""

from __future__ import annotations

import ast
import inspect
import re
import tomllib
from pathlib import Path

import pytest

from hookmq import hookspecs
from hookmq.cli import REFERENCE_BEGIN, REFERENCE_END, build_parser, reference_markdown
from hookmq.config import Config
from hookmq.pluginmanager import build_plugin_manager
from hookmq.testing import pytest_plugin

ROOT = Path(__file__).parents[1]
DOCS = ROOT / "docs"


def spec_signatures() -> dict[str, str]:
    return {
        name: f"{name}({', '.join(inspect.signature(function).parameters)})"
        for name, function in vars(hookspecs).items()
        if inspect.isfunction(function) and hasattr(function, "hookmq_spec")
    }


def code_blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("name", sorted(spec_signatures()))
def test_plugin_hooks_are_documented_with_signature(name: str) -> None:
    headings = re.findall(r"^### (.+)$", (DOCS / "plugin_hooks.md").read_text(), flags=re.MULTILINE)
    assert spec_signatures()[name] in headings


def test_plugin_hooks_doc_has_no_stale_hooks() -> None:
    text = (DOCS / "plugin_hooks.md").read_text()
    documented = set(re.findall(r"^### (\w+)\(", text, flags=re.MULTILINE))
    assert documented == set(spec_signatures())


def test_every_hook_has_a_test() -> None:
    """Every hookspec has a test function named test_hook_<name> somewhere under tests/."""
    found = set()
    for path in (ROOT / "tests").rglob("*.py"):
        found.update(re.findall(r"def (test_hook_\w+)\(", path.read_text(errors="replace")))
    missing = sorted(name for name in spec_signatures() if f"test_hook_{name}" not in found)
    assert not missing, f"hooks without a test_hook_<name> test: {', '.join(missing)}"


def test_configuration_reference_is_up_to_date() -> None:
    text = (DOCS / "configuration.md").read_text()
    generated = text[text.index(REFERENCE_BEGIN) + len(REFERENCE_BEGIN):text.index(REFERENCE_END)]
    assert generated.strip() == reference_markdown().strip(), (
        "docs/configuration.md is stale: run `hookmq config reference --update docs/configuration.md`"
    )


def test_configuration_examples_are_valid() -> None:
    blocks = code_blocks(DOCS / "configuration.md", "toml")
    assert blocks
    for block in blocks:
        config = Config.from_mapping(tomllib.loads(block), source="docs/configuration.md")
        build_plugin_manager(config)


def test_every_flag_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    flags = {
        option for action in build_parser()._actions for option in action.option_strings
        if option.startswith("--") and option not in {"--help", "--version", "--config"}
    }
    assert flags
    for flag in sorted(flags):
        assert f"`{flag}" in text, flag


def test_every_fixture_is_documented() -> None:
    text = (DOCS / "writing_plugins.md").read_text()
    fixtures = {name for name, value in vars(pytest_plugin).items() if hasattr(value, "_fixture_function_marker")
                or type(value).__name__ == "FixtureFunctionDefinition"}
    assert {"broker_config", "broker_plugins", "broker", "mqtt_client"} <= fixtures
    for name in fixtures:
        assert f"`{name}`" in text, name


@pytest.mark.parametrize("doc", ["writing_plugins.md", "plugin_hooks.md"])
def test_python_snippets_parse(doc: str) -> None:
    for block in code_blocks(DOCS / doc, "python"):
        ast.parse(block)


def test_example_plugin_is_complete() -> None:
    example = DOCS / "examples" / "hookmq-example-plugin"
    project = tomllib.loads((example / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["hookmq"] == {"example": "hookmq_example"}
    assert (example / "src" / "hookmq_example" / "__init__.py").is_file()
    assert (example / "tests").is_dir()


def test_the_operators_cluster_table_lists_every_cluster_key_with_its_default() -> None:
    from hookmq.config import ClusterSettings, _toml_literal

    text = (DOCS / "operating-cluster.md").read_text()
    table = text.split("<!-- cluster keys: every field of hookmq.config.ClusterSettings -->", 1)[1].split("\n\n", 1)[0]
    rows = {match[0]: match[1] for match in re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, flags=re.MULTILINE)}
    fields = ClusterSettings.model_fields
    assert sorted(rows) == sorted(fields), "docs/operating-cluster.md: the [cluster] table and the model differ"
    for key, info in fields.items():
        assert rows[key].strip() == _toml_literal(info.get_default(call_default_factory=True)), key
    assert list(rows) == list(fields), "the table follows the model's order"


def test_the_cluster_guide_is_linked_from_the_cluster_page_and_the_readme() -> None:
    assert "(operating-cluster.md)" in (DOCS / "cluster.md").read_text()
    assert "(docs/operating-cluster.md)" in (ROOT / "README.md").read_text()
