"""The collector settings a running broker applies once it has started."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hookmq.engine.collector import YOUNG_THRESHOLD, tune_collector


@pytest.fixture
def restore_collector() -> Iterator[None]:
    """Put the interpreter's collector back as it was: the settings are process-wide."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_collector")
def test_tune_collector_freezes_startup_objects_and_raises_the_young_threshold() -> None:
    _, middle, old = gc.get_threshold()
    gc.unfreeze()
    tune_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_THRESHOLD, middle, old)
    assert gc.isenabled()


@pytest.mark.usefixtures("restore_collector")
def test_cycles_made_after_tuning_are_still_collected() -> None:
    tune_collector()

    class Node:
        other: object

    first, second = Node(), Node()
    first.other, second.other = second, first
    del first, second
    assert gc.collect() > 0
