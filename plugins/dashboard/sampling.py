"""Sampled broker figures: one snapshot of broker.info() per interval, kept in a ring buffer.

The dashboard never counts anything per message: it reads the broker's own `$SYS` figures
once per `sample_interval` and derives rates from the difference of two samples. Sans-I/O:
the caller supplies the clock reading and the figures.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

Figure = int | float | str
"""One value of broker.info(): counters and gauges are numbers, version and dates are text."""

RATE_SUFFIXES: tuple[str, ...] = ("_received", "_sent", "_dropped")
"""Figures ending like this are cumulative counters; the dashboard charts their rate per second."""


def is_number(value: object) -> bool:
    """Whether a figure is a number worth charting (booleans are not)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_counter(name: str) -> bool:
    """Whether a figure is cumulative (only ever grows while the broker runs)."""
    return name.endswith(RATE_SUFFIXES) or name == "clients_total"


@dataclass(frozen=True, slots=True)
class Sample:
    """The broker's figures at one moment, with the rates since the previous sample."""

    time: float
    figures: Mapping[str, Figure]
    rates: Mapping[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The sample as the API and the live feed send it."""
        return {"t": round(self.time, 3), "figures": dict(self.figures), "rates": dict(self.rates)}


def rates_between(previous: Sample | None, time: float, figures: Mapping[str, Figure]) -> dict[str, float]:
    """Per-second rate of every cumulative counter since the previous sample.

    The first sample has no rates. A counter that went backwards (the broker restarted its
    counting) reads as 0 rather than a negative rate.
    """
    if previous is None:
        return {}
    elapsed = time - previous.time
    if elapsed <= 0:
        return dict(previous.rates)
    rates: dict[str, float] = {}
    for name, value in figures.items():
        before = previous.figures.get(name)
        if is_counter(name) and is_number(value) and before is not None and is_number(before):
            delta = float(value) - float(before)
            rates[f"{name}_per_second"] = round(max(delta, 0.0) / elapsed, 3)
    return rates


class History:
    """A bounded ring buffer of samples; the oldest fall out once `length` is reached."""

    def __init__(self, length: int) -> None:
        self._samples: deque[Sample] = deque(maxlen=length)

    def record(self, time: float, figures: Mapping[str, Figure]) -> Sample:
        """Add a snapshot of the figures taken at `time` and return it with its rates."""
        numbers = {name: value for name, value in figures.items() if is_number(value) or isinstance(value, str)}
        sample = Sample(time, numbers, rates_between(self.latest, time, numbers))
        self._samples.append(sample)
        return sample

    @property
    def latest(self) -> Sample | None:
        """The newest sample, or None before the first one."""
        return self._samples[-1] if self._samples else None

    @property
    def capacity(self) -> int:
        """The most samples kept."""
        return self._samples.maxlen or 0

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(tuple(self._samples))

    def since(self, time: float) -> list[Sample]:
        """The samples taken at or after `time`, oldest first."""
        return [sample for sample in self._samples if sample.time >= time]
