"""``hookmq store …`` sub-commands: ``hookmq store migrate --from sqlite:PATH --to redis://HOST:PORT/DB``.

The main CLI creates the ``store`` sub-parser and hands it to :func:`add_arguments`; the
parsed arguments go to :func:`run`, whose return value is the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from .errors import StoreError
from .migrate import MigrationError, migrate, open_location

__all__ = ["add_arguments", "run"]

_EPILOG = """\
locations:
  sqlite:PATH                 an SQLite file (created when it is the destination)
  redis://[:PASSWORD@]HOST:PORT/DB, rediss://…   a Redis database (rediss = TLS)
  redis-cluster://HOST:PORT, rediss-cluster://…  a Redis Cluster, by one of its nodes
  (memory is not a location: it holds nothing outside a running broker)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``store`` sub-commands to ``parser`` (the ``hookmq store`` parser)."""
    commands = parser.add_subparsers(dest="store_command", metavar="COMMAND", required=True)
    migrate_parser = commands.add_parser(
        "migrate",
        help="copy all persistent state from one store to another",
        description="Copy sessions, subscriptions, inflight messages, offline queues, retained messages and "
        "$SYS counters from one store to another. Stop the broker first: the copy is a snapshot.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    migrate_parser.add_argument("--from", dest="source", required=True, metavar="LOCATION", help="store to read")
    migrate_parser.add_argument("--to", dest="destination", required=True, metavar="LOCATION", help="store to write")
    migrate_parser.add_argument("--from-prefix", default="hookmq:", help="key prefix of a Redis source (default: %(default)s)")
    migrate_parser.add_argument("--to-prefix", default="hookmq:", help="key prefix of a Redis destination (default: %(default)s)")
    migrate_parser.add_argument(
        "--clear-destination", action="store_true", help="delete what the destination holds before copying"
    )
    migrate_parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the chosen ``store`` sub-command; returns the exit status."""
    if getattr(args, "store_command", None) != "migrate":
        print("hookmq store: choose a command (migrate)", file=sys.stderr)
        return 2
    return asyncio.run(_run_migrate(args))


def _same_location(args: argparse.Namespace) -> bool:
    return bool(args.source == args.destination and args.from_prefix == args.to_prefix)


async def _run_migrate(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]

    if _same_location(args):
        print("hookmq store migrate: --from and --to name the same store", file=sys.stderr)
        return 2
    try:
        source = await open_location(args.source, args.from_prefix)
    except StoreError as error:
        print(f"hookmq store migrate: source: {error}", file=sys.stderr)
        return 2
    try:
        destination = await open_location(args.destination, args.to_prefix, bulk=True)
    except StoreError as error:
        await source.close()
        print(f"hookmq store migrate: destination: {error}", file=sys.stderr)
        return 2
    # Created once the total is known, so the bar never shows a bogus "0 items" first.
    bars: list[tqdm] = []

    def set_total(total: int) -> None:
        bars.append(tqdm(desc="migrating", unit="item", file=sys.stderr, disable=args.quiet, total=total))

    def advance(steps: int) -> None:
        if bars:
            bars[0].update(steps)

    try:
        report = await migrate(
            source, destination, clear_destination=args.clear_destination, on_total=set_total, on_progress=advance
        )
    except MigrationError as error:
        print(f"hookmq store migrate: {error}", file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"hookmq store migrate: failed, the destination may be incomplete: {error}", file=sys.stderr)
        return 1
    finally:
        for bar in bars:
            bar.close()
        await destination.close()
        await source.close()
    print(f"migrated {args.source} -> {args.destination}: {report.summary()}", file=sys.stderr)
    return 0
