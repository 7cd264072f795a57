"""The broker engine: sessions, QoS flows, routing, retained messages, wills, expiry and `$SYS`."""

from .broker import Broker

__all__ = ["Broker"]
