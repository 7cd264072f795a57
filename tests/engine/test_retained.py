"""The retained set: one message per topic, versions from a hybrid logical clock, tombstones."""

from __future__ import annotations

from hookmq.engine.message import Message
from hookmq.engine.retained import MAX_TOMBSTONES, RetainedMessages


def test_retained_versions_newer_wins_and_clears_are_remembered() -> None:
    clock = iter(range(100, 10_000))
    retained = RetainedMessages(clock=lambda: next(clock))
    assert retained.store(Message("t", b"1", 0, True))
    v1 = retained.version("t")
    assert v1 is not None
    assert not retained.apply("t", Message("t", b"old", 0, True), v1 - 1)  # older: loses
    assert retained.apply("t", Message("t", b"new", 0, True), 50_000)  # newer, from elsewhere: wins
    assert retained.next_version() > 50_000  # the clock moved past what it saw
    assert retained.delete("t")
    cleared = retained.version("t")
    assert cleared is not None and retained.get("t") is None
    assert not retained.apply("t", Message("t", b"new", 0, True), 50_000)  # no resurrection
    assert [(e.topic, e.message, e.version) for e in retained.snapshot()] == [("t", None, cleared)]
    retained.forget_tombstones(cleared + 1)
    assert retained.snapshot() == []
    for n in range(MAX_TOMBSTONES + 5):
        retained.apply(f"x/{n}", None, 60_000 + n)
    assert len(retained.snapshot()) == MAX_TOMBSTONES  # bounded, the oldest forgotten


def test_matching_by_filter_and_expiry_keeps_the_version() -> None:
    retained = RetainedMessages(clock=iter(range(1, 100)).__next__)
    retained.store(Message("a/b", b"1", 0, True))
    retained.store(Message("a/c", b"2", 0, True, expiry_at=10.0))
    retained.store(Message("x", b"3", 0, True))
    assert sorted(m.topic for m in retained.matching("a/+")) == ["a/b", "a/c"]
    assert [m.topic for m in retained.matching("x")] == ["x"]
    version = retained.version("a/c")
    assert [m.topic for m in retained.expired(now=11.0)] == ["a/c"]
    assert retained.get("a/c") is None and retained.version("a/c") == version  # a tombstone, same version
    assert retained.topics() == ["a/b", "x"] and len(retained) == 2
    assert not retained.store(Message("a/b", b"", 0, True))  # an empty payload clears
    assert retained.get("a/b") is None and retained.version("a/b") is not None
