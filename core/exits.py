"""Exit statuses of the ``hookmq`` command, and the setup errors that lead to them.

A setup error is something that stops the broker before it serves anyone and that the
operator must fix outside hookmq: a port another process holds, a host that does not
resolve, a store that cannot be reached, a certificate file that is missing. The command
prints its message as one line (``hookmq: <message>``) and exits with the error's status;
docs/operations.md lists them.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILURE",
    "EXIT_LISTENER",
    "EXIT_OK",
    "EXIT_STORE",
    "EXIT_USAGE",
    "ListenerError",
    "SetupError",
    "StoreOpenError",
]

EXIT_OK = 0
"""The broker ran and stopped on SIGINT or SIGTERM; a command did what it was asked."""

EXIT_FAILURE = 1
"""A plugin failed to start, or a command failed for another reason."""

EXIT_USAGE = 2
"""A usage or configuration error: a bad flag, key or value, a missing or unusable TLS file."""

EXIT_LISTENER = 3
"""A listener could not start: its port is in use or not permitted, its host does not resolve."""

EXIT_STORE = 4
"""The store could not be opened: Redis unreachable, a database file that cannot be created."""


class SetupError(Exception):
    """The broker cannot start; the message is one line that names what failed and where."""

    exit_status: int = EXIT_FAILURE


class ListenerError(OSError, SetupError):
    """A listener cannot bind its address (the message names the listener and the address).

    Also an `OSError`, carrying the system's error number (EADDRINUSE, EACCES, ...) as
    `errno` when there is one, so callers that catch OSError keep working.
    """

    exit_status = EXIT_LISTENER

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(errno, message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StoreOpenError(SetupError):
    """The configured store cannot be opened (the message names the backend and where it is)."""

    exit_status = EXIT_STORE
