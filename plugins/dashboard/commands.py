"""``hookmq cluster members`` and ``hookmq cluster status``: a running node's cluster, from its API.

Like ``serf members``: they ask one running node (its dashboard's ``/api/cluster``) and print
what it sees, so they need no configuration file, only the dashboard's URL and token:
``--url`` (or ``HOOKMQ_DASHBOARD_URL``; default ``http://127.0.0.1:8080/``, the dashboard's
default address) and ``--token`` (or ``HOOKMQ_DASHBOARD_TOKEN``; not needed when the node lets
loopback requests in). Standard library only (urllib), so they work where the dashboard extra
is not installed. They join ``hookmq cluster`` through the gossip plugin's ``cluster_actions``
(beside ``keygen``). Exit statuses as docs/operations.md: 0 done, 1 the node could not be asked
(unreachable, refused the token, clustering not enabled), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from hookmq.plugins.gossip.commands import cluster_actions

__all__ = ["add_cluster_commands", "fetch_cluster", "format_members", "format_status"]

DEFAULT_URL = "http://127.0.0.1:8080/"
TIMEOUT = 5.0


class CommandError(Exception):
    """One line saying why the node could not be asked."""


def add_cluster_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookmq cluster members`` and ``hookmq cluster status``."""
    actions = cluster_actions(subparsers)
    for name, text, run in (("members", "list the members a running node sees (like serf members)", _members),
                            ("status", "one summary of the cluster a running node sees", _status)):
        parser = actions.add_parser(name, help=text)
        parser.add_argument("--url", default=os.environ.get("HOOKMQ_DASHBOARD_URL", DEFAULT_URL),
                            help="the node's dashboard (default $HOOKMQ_DASHBOARD_URL or %(default)s)")
        parser.add_argument("--token", default=os.environ.get("HOOKMQ_DASHBOARD_TOKEN"),
                            help="the dashboard token (default $HOOKMQ_DASHBOARD_TOKEN)")
        parser.add_argument("--json", action="store_true", help="print the node's /api/cluster answer as JSON")
        parser.set_defaults(func=_runner(run))


def fetch_cluster(url: str, token: str | None, timeout: float = TIMEOUT) -> dict[str, Any]:
    """GET ``<url>/api/cluster``; CommandError (one line) for anything but a JSON answer with clustering on."""
    if not url.startswith(("http://", "https://")):
        raise CommandError(f"--url {url!r}: give an http:// or https:// URL")
    endpoint = url.rstrip("/") + "/api/cluster"
    request = urllib.request.Request(endpoint, headers={"Accept": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # the scheme is checked above
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise CommandError(f"{endpoint}: the token was refused (401): give --token or $HOOKMQ_DASHBOARD_TOKEN") from None
        raise CommandError(f"{endpoint}: HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise CommandError(f"{endpoint}: cannot reach the node: {error.reason}") from None
    except (OSError, ValueError) as error:
        raise CommandError(f"{endpoint}: {type(error).__name__}: {error}") from None
    if not isinstance(body, dict):
        raise CommandError(f"{endpoint}: not a cluster answer")
    if not body.get("enabled"):
        raise CommandError(f"{endpoint}: clustering not enabled on this node")
    return body


def _when(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(value))


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


def format_members(view: dict[str, Any]) -> str:
    """One line per member: name, address, state, incarnation, link, routes, clients, joined."""
    rows = [["NAME", "ADDRESS", "STATE", "INCARNATION", "LINK", "ROUTES", "CLIENTS", "JOINED"]]
    for member in view.get("members", []):
        link = member.get("link")
        figures = member.get("figures") or {}
        rows.append([
            str(member.get("name")) + (" (this node)" if member.get("local") else ""),
            str(member.get("address")), str(member.get("state")), str(member.get("incarnation")),
            "-" if member.get("local") else ("up" if (link or {}).get("up") else "down"),
            "-" if member.get("routes") is None else str(member.get("routes")),
            str(figures["clients"]) if "clients" in figures else "-",
            _when(member.get("joined_at")),
        ])
    return _table(rows)


def format_status(view: dict[str, Any]) -> str:
    """A few lines: the node, members by state, links up, routes, the totals over live nodes."""
    by_state = view.get("members_by_state", {})
    peers = [m for m in view.get("members", []) if not m.get("local") and m.get("state") in ("alive", "suspect")]
    up = sum(1 for m in peers if (m.get("link") or {}).get("up"))
    totals = view.get("totals") or {}
    lines = [
        f"node: {view.get('node')} ({'joined' if view.get('joined') else 'not joined yet'})",
        "members: " + ", ".join(f"{by_state.get(state, 0)} {state}" for state in ("alive", "suspect", "failed", "left")),
        f"links: {up} of {len(peers)} up",
        f"routes: {view.get('routes', {}).get('count', 0)} to other nodes, "
        f"{view.get('routes', {}).get('local_filters', 0)} local filters",
        f"clients: {totals.get('clients', '-')}, subscriptions: {totals.get('subscriptions', '-')} "
        f"(over {totals.get('nodes_reporting', 0)} live nodes reporting)",
        f"messages per second: {totals.get('messages_in_per_second', 0)} in, {totals.get('messages_out_per_second', 0)} out",
    ]
    return "\n".join(lines)


def _runner(formatter: Callable[[dict[str, Any]], str]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            view = fetch_cluster(args.url, args.token)
        except CommandError as error:
            print(f"hookmq: {error}", file=sys.stderr)
            return 1
        print(json.dumps(view, indent=2) if args.json else formatter(view))
        return 0

    return run


def _members(view: dict[str, Any]) -> str:
    return format_members(view)


def _status(view: dict[str, Any]) -> str:
    return format_status(view)
