"""The re-join memory: whom to join again after a partition, and whom to forget."""

from __future__ import annotations

import random

from hookmq.plugins.gossip.membership.rejoin import TARGETS_PER_ROUND, RejoinMemory

SEED = ("10.0.0.1", 7946)


def _memory(failed: int) -> RejoinMemory:
    memory = RejoinMemory([SEED])
    for index in range(failed):
        memory.failed(f"n{index}", (f"10.0.1.{index}", 7946), now=0.0)
    return memory


def test_every_missing_seed_and_a_few_failed_nodes_are_tried() -> None:
    memory = _memory(10)
    targets = memory.targets(set(), random.Random(1), include_seeds=True, now=1.0)
    assert targets[0] == SEED and len(targets) == 1 + TARGETS_PER_ROUND
    assert memory.targets({SEED}, random.Random(1), include_seeds=True, now=2.0)[0] != SEED  # a member: not re-joined
    assert SEED not in memory.targets(set(), random.Random(1), include_seeds=False, now=3.0)


def test_failed_nodes_take_turns_least_recently_tried_first() -> None:
    memory = _memory(9)
    rng = random.Random(2)
    rounds = [set(memory.targets(set(), rng, include_seeds=False, now=float(t))) for t in range(3)]
    assert set().union(*rounds) == {(f"10.0.1.{i}", 7946) for i in range(9)}  # all nine in three rounds
    assert all(len(r) == TARGETS_PER_ROUND for r in rounds)


def test_an_address_that_refuses_is_forgotten_and_one_that_comes_back_too() -> None:
    memory = _memory(3)
    memory.refused(("10.0.1.0", 7946))
    assert memory.missing() == 2
    memory.back("n1", ("10.0.1.1", 7946))
    assert memory.missing() == 1
    assert memory.targets(set(), random.Random(3), include_seeds=False, now=1.0) == [("10.0.1.2", 7946)]


def test_failed_nodes_expire_after_the_timeout() -> None:
    memory = _memory(2)
    memory.failed("late", ("10.0.2.1", 7946), now=50.0)
    memory.expire(now=70.0, timeout=30.0)
    assert memory.missing() == 1
    memory.expire(now=1000.0, timeout=0.0)  # 0: never
    assert memory.missing() == 1
