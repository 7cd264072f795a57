"""The extras: what a deployment installs (`hookmq[all]`) leaves the benchmark charts out."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EXTRAS: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]


def requirements(extra: str) -> set[str]:
    """Distribution names an extra pulls in, following `hookmq[...]` references."""
    names: set[str] = set()
    for requirement in EXTRAS[extra]:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
        if name == "hookmq":
            inner = re.search(r"\[(.*?)\]", requirement)
            assert inner, requirement
            for other in inner.group(1).split(","):
                names |= requirements(other.strip())
        else:
            names.add(name)
    return names


def test_a_deployment_does_not_pull_chart_libraries() -> None:
    everything = requirements("all")
    assert not everything & {"matplotlib", "numpy"}
    # What the broker, its plugins and `hookmq store migrate` need is there.
    assert {"redis", "aiohttp", "prometheus-client", "tqdm", "cryptography"} <= everything


def test_charts_stay_in_the_bench_extra_and_the_tests_get_them() -> None:
    assert "matplotlib" in requirements("bench")
    assert requirements("all") | requirements("bench") <= requirements("test")


def test_the_readme_runs_the_deployment_extra() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "pip install '.[all]' && .venv/bin/hookmq" in readme
