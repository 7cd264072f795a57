"""Numbering, acknowledgement, resending and duplicates without an event loop."""

from __future__ import annotations

import pytest

from hookmq.plugins.gossip.link.errors import LinkError
from hookmq.plugins.gossip.link.sequencing import Inbox, Outbox, Overloaded


def test_frames_are_numbered_kept_until_acked_and_resent_after_a_break() -> None:
    outbox = Outbox(1 << 20, 100)
    seqs = [outbox.add(1, bytes([i])) for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert [f.seq for f in outbox.take(1 << 20)] == [1, 2, 3, 4, 5]
    assert outbox.acked(2) == [1, 2]
    assert outbox.base == 3
    outbox.rewind()
    assert outbox.unwritten == 3 and outbox.resent == 3
    assert [f.seq for f in outbox.take(1 << 20)] == [3, 4, 5]
    assert outbox.acked(5) == [3, 4, 5]
    assert len(outbox) == 0 and outbox.held_bytes == 0 and outbox.base == 6


def test_an_ack_may_cover_frames_not_yet_written_again() -> None:
    outbox = Outbox(1 << 20, 100)
    for _ in range(3):
        outbox.add(1, b"x")
    outbox.take(1 << 20)
    outbox.rewind()
    assert outbox.acked(2) == [1, 2]  # the peer repeats its last ack on the new connection
    assert [f.seq for f in outbox.take(1 << 20)] == [3]


def test_an_ack_of_a_frame_never_written_closes_the_link() -> None:
    outbox = Outbox(1 << 20, 100)
    outbox.add(1, b"x")
    with pytest.raises(LinkError):
        outbox.acked(1)


def test_take_respects_the_budget_but_always_moves() -> None:
    outbox = Outbox(1 << 20, 100)
    for _ in range(4):
        outbox.add(1, bytes(100))
    assert len(outbox.take(250)) == 2
    assert len(outbox.take(10)) == 1
    assert outbox.unwritten == 1


def test_the_outbox_refuses_beyond_its_bounds() -> None:
    outbox = Outbox(250, 3)
    outbox.add(1, bytes(200))
    with pytest.raises(Overloaded):
        outbox.add(1, bytes(100))
    outbox.add(1, bytes(50))
    outbox.add(1, b"")
    with pytest.raises(Overloaded):
        outbox.add(1, b"")
    assert [f.body for f in outbox.drain()] == [bytes(200), bytes(50), b""]
    assert len(outbox) == 0


def test_fits_says_what_add_would_take_and_low_is_half_of_both_bounds() -> None:
    outbox = Outbox(1000, 4)
    assert outbox.fits(5000) and outbox.low  # an empty outbox takes any one frame
    outbox.add(1, bytes(400))
    assert outbox.fits(600) and not outbox.fits(601)
    assert outbox.low
    outbox.add(1, bytes(200))
    assert not outbox.low  # 600 bytes held, above half of 1000
    outbox.add(1, b"")
    outbox.add(1, b"")
    assert not outbox.fits(0)  # four frames, the frame bound
    with pytest.raises(Overloaded):
        outbox.add(1, b"")
    outbox.take(10_000)
    assert outbox.acked(2) == [1, 2]
    assert outbox.low and outbox.fits(1000)


def test_the_inbox_drops_duplicates_and_acks_contiguous_finished_frames() -> None:
    inbox = Inbox()
    inbox.connected(b"boot-one", 1)
    assert [inbox.take(seq) for seq in (1, 2, 3)] == [True, True, True]
    assert inbox.take(2) is False and inbox.duplicates == 1
    inbox.finish(b"boot-one", 2, True)
    assert inbox.ack_due() is None  # 1 is still running
    inbox.finish(b"boot-one", 1, True)
    assert inbox.ack_due() == 2
    assert inbox.ack_due() is None
    inbox.finish(b"boot-one", 3, False)
    assert inbox.failures == [3] and inbox.ack_due() == 3


def test_a_gap_closes_the_link() -> None:
    inbox = Inbox()
    inbox.connected(b"b", 1)
    inbox.take(1)
    with pytest.raises(LinkError):
        inbox.take(3)


def test_a_reconnection_repeats_the_ack_and_recent_nacks() -> None:
    inbox = Inbox()
    inbox.connected(b"b", 1)
    for seq in (1, 2, 3):
        inbox.take(seq)
        inbox.finish(b"b", seq, seq != 2)
    inbox.failures.clear()
    assert inbox.ack_due() == 3
    inbox.connected(b"b", 2)  # the sender never saw our ack of 2 and 3
    assert inbox.failures == [2]
    assert inbox.ack_due() == 3
    assert inbox.take(2) is False and inbox.take(3) is False and inbox.take(4) is True


def test_a_restarted_sender_starts_over_and_old_handlers_are_ignored() -> None:
    inbox = Inbox()
    inbox.connected(b"old", 1)
    inbox.take(1)
    inbox.take(2)
    inbox.connected(b"new", 1)
    inbox.finish(b"old", 1, True)  # the old process's handler finishing late
    assert inbox.ack_due() is None
    assert inbox.take(1) is True


def test_a_resume_beyond_what_was_taken_is_a_gap() -> None:
    inbox = Inbox()
    inbox.connected(b"b", 1)
    inbox.take(1)
    with pytest.raises(LinkError):
        inbox.connected(b"b", 5)


def test_a_new_sender_boot_may_start_anywhere() -> None:
    inbox = Inbox()
    inbox.connected(b"b", 40)  # a sender with 39 frames acknowledged by our previous process
    assert inbox.take(39) is False and inbox.take(40) is True
