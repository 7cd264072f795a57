"""The descriptor budget's arithmetic, with the limit and the open count handed in."""

from __future__ import annotations

from hookmq.transport.descriptors import DescriptorBudget


class Process:
    """A pretend process: a limit, some descriptors no owner accounts for, and a clock."""

    def __init__(self, limit: int, others: int) -> None:
        self.limit = limit
        self.others = others
        self.held = 0
        self.now = 0.0

    def budget(self) -> DescriptorBudget:
        return DescriptorBudget(lambda: self.limit, lambda: self.others + self.held, lambda: self.now)


def admit(process: Process, budget: DescriptorBudget, owner: str) -> bool:
    if process.others + process.held >= process.limit:
        return False  # accept() itself fails with EMFILE
    process.held += 1  # accepted: open before it is admitted
    if budget.admit(owner):
        return True
    process.held -= 1  # the caller closes it
    return False


def test_each_owner_leaves_the_others_reserve() -> None:
    process = Process(limit=100, others=10)
    budget = process.budget()
    budget.reserve("dashboard", 5)
    budget.reserve("mqtt", 20)
    mqtt = sum(admit(process, budget, "mqtt") for _ in range(200))
    assert mqtt == 100 - 10 - 5  # everything but the dashboard's reserve
    assert budget.refused["mqtt"] == 200 - mqtt
    assert sum(admit(process, budget, "dashboard") for _ in range(10)) == 5
    for _ in range(50):
        budget.release("mqtt")
        process.held -= 1
    process.now += 1
    # With 50 MQTT sockets free again the dashboard may grow, but never into MQTT's 20.
    dashboard = sum(admit(process, budget, "dashboard") for _ in range(100))
    assert budget.held("dashboard") == 5 + dashboard
    assert process.limit - (process.others + process.held) >= 0
    assert budget.kept_for_others("dashboard") == 0  # MQTT holds 45, more than its reserve


def test_unaccounted_descriptors_are_measured_near_the_edge() -> None:
    process = Process(limit=100, others=10)
    budget = process.budget()
    budget.reserve("dashboard", 5)
    process.others = 60  # a store opened files meanwhile
    process.now += 1
    admitted = sum(admit(process, budget, "mqtt") for _ in range(100))
    assert admitted == 100 - 60 - 5
