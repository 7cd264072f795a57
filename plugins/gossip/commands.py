"""``hookmq cluster …``: the operator's cluster commands (``keygen`` here; more actions join it).

``hookmq cluster keygen`` prints a new gossip key: base64 of 32 random bytes (AES-256) by
default, or 16/24 with ``--bytes``, the format ``[cluster] key`` and ``key_file`` read
(docs/cluster.md "Keys, encryption and rotation"). Another plugin or module adds an action
with :func:`cluster_actions` instead of a second ``cluster`` command.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import sys

__all__ = ["add_cluster_command", "cluster_actions", "new_key"]

KEY_SIZES = (16, 24, 32)


def new_key(size: int = 32) -> str:
    """A fresh gossip key, base64 of ``size`` bytes from the operating system's CSPRNG."""
    if size not in KEY_SIZES:
        raise ValueError(f"a gossip key is 16, 24 or 32 bytes, not {size}")
    return base64.b64encode(secrets.token_bytes(size)).decode()


def cluster_actions(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The sub-parsers of ``hookmq cluster`` (the command is created the first time)."""
    existing = subparsers.choices.get("cluster")
    if existing is not None:
        actions = existing.get_default("cluster_actions")
        if isinstance(actions, argparse._SubParsersAction):
            return actions
    parser = subparsers.add_parser("cluster", help="cluster tools (keygen; members and status with the dashboard plugin)")
    actions = parser.add_subparsers(dest="cluster_action", metavar="ACTION")

    def usage(args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(func=usage, cluster_actions=actions)
    return actions


def add_cluster_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookmq cluster keygen``."""
    keygen = cluster_actions(subparsers).add_parser(
        "keygen", help="print a new key for [cluster] key (base64; one line of a key_file)"
    )
    keygen.add_argument("--bytes", type=int, choices=KEY_SIZES, default=32,
                        help="key length: 16, 24 or 32 bytes (AES-128/192/256; default 32)")
    keygen.set_defaults(func=_keygen)


def _keygen(args: argparse.Namespace) -> int:
    print(new_key(args.bytes))
    return 0
