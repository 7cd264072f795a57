"""The one exception the protocol layer raises for bad input."""

from __future__ import annotations

from .reason_codes import ReasonCode


class ProtocolError(Exception):
    """Bad input from a peer, with the reason code an MQTT 5 server answers it with.

    ``reason_code`` is a :class:`ReasonCode` value (0x81 malformed packet, 0x82 protocol
    error, 0x95 packet too large, …); ``message`` says what exactly was wrong.
    """

    def __init__(self, reason_code: int, message: str) -> None:
        super().__init__(f"{message} (reason code 0x{reason_code:02X})")
        self.reason_code = reason_code
        self.message = message


class MalformedPacket(ProtocolError):
    """A packet that cannot be parsed as the specification requires (reason code 0x81)."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.MALFORMED_PACKET, message)


class ProtocolViolation(ProtocolError):
    """A well-formed packet that breaks a protocol rule (reason code 0x82)."""

    def __init__(self, message: str) -> None:
        super().__init__(ReasonCode.PROTOCOL_ERROR, message)
