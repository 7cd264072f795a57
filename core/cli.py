"""The ``hookmq`` command: run a broker, list plugins, show and check configuration.

``hookmq`` with no sub-command is ``hookmq serve``. The flags of the Go broker this project
grew from work verbatim, with or without a sub-command::

    hookmq --mode=true --port=7947 --members=127.0.0.1:7946 --tcp=:1885 --ws=:1886 --info=:1887

Flags override the configuration file, which overrides the defaults. The exit statuses are
those of `hookmq.exits`: 2 means a usage or configuration error (the message names the file,
or the flag, and the key); a setup error (a port in use, an unreachable store) is one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import Any

from . import __version__
from .buildinfo import build
from .config import Config, ConfigError, config_reference, load_config, with_listener_address
from .configshow import effective_toml
from .exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, SetupError
from .hooks import HookFacade, PluginError
from .logsetup import configure_logging
from .pluginmanager import (
    HookmqPluginManager,
    PluginInfo,
    build_plugin_manager,
    describe_plugins,
    installed_plugins,
    plugin_settings_models,
)
from .transport.tls import tls_material_problems

__all__ = ["build_parser", "effective_config", "main"]

logger = logging.getLogger("hookmq.cli")

Handler = Callable[[argparse.Namespace], "int | None"]

#: Sub-commands implemented by other hookmq modules, imported only when used.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "bench": ("hookmq.bench.cli", "measure hookmq against mosquitto and amqtt"),
    "store": ("hookmq.store.cli", "inspect and maintain the persistent store"),
}



# -------------------------------------------------------------------------
# The parser
# -------------------------------------------------------------------------


def _add_broker_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """The options every broker-facing command accepts (top level and ``serve``)."""
    # A sub-parser's default would overwrite the value given before the sub-command.
    default: Any = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "-c", "--config", metavar="FILE", default=argparse.SUPPRESS if suppress else os.environ.get("HOOKMQ_CONFIG"),
        help="TOML configuration file (default: $HOOKMQ_CONFIG, else built-in defaults)",
    )
    group.add_argument("--log-level", metavar="LEVEL", default=default, help="log level: DEBUG, INFO, WARNING, ERROR")
    group.add_argument(
        "--disable-plugin", metavar="NAME", action="append", default=argparse.SUPPRESS if suppress else [],
        help="do not load the named plugin (repeatable); same as disabled_plugins in the file",
    )
    flags = parser.add_argument_group("listener and cluster flags (those of the Go broker, verbatim)")
    flags.add_argument("--tcp", metavar="ADDR", default=default, help="address of the TCP listener, e.g. :1883")
    flags.add_argument("--ws", metavar="ADDR", default=default, help="address of the WebSocket listener, e.g. :1882")
    flags.add_argument(
        "--info", metavar="ADDR", default=default, help="address of the dashboard ([plugins.dashboard] address), e.g. :8080"
    )
    flags.add_argument(
        "--mode", metavar="BOOL", type=_boolean, default=default,
        help="enable clustering: true or false ([cluster] mode); needs the gossip plugin, "
        "without it the broker runs as a single node",
    )
    flags.add_argument(
        "--members", metavar="LIST", type=_comma_list, default=default,
        help="comma-separated host:port of cluster nodes to join ([cluster] members)",
    )
    flags.add_argument("--port", metavar="PORT", type=int, default=default, help="cluster gossip port ([cluster] port)")
    flags.add_argument(
        "--workers", metavar="N", type=_workers, default=default,
        help="worker processes sharing the listeners, or auto (the number of cores) ([server] workers; default 1)",
    )
    flags.add_argument(
        "--redis", metavar="HOST:PORT", default=default,
        help='use the Redis store at this address ([storage] backend = "redis", [plugins.redis_store] url)',
    )


def _boolean(text: str) -> bool:
    """``--mode=true`` and friends."""
    lowered = text.strip().lower()
    if lowered in {"true", "1", "yes", "on"}:
        return True
    if lowered in {"false", "0", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _workers(text: str) -> int | str:
    """``--workers 4`` or ``--workers auto``."""
    if text.strip().lower() == "auto":
        return "auto"
    if text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a number of workers (1 or more) or auto, got {text!r}")


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full parser; ``argv`` decides which lazily imported command gets its real arguments."""
    parser = argparse.ArgumentParser(
        prog="hookmq",
        description="An MQTT 3.1 / 3.1.1 / 5.0 broker whose features are plugins. "
        "With no command, runs the broker (hookmq serve).",
        epilog="Flags override the configuration file. Exit status: 0 stopped normally, 1 a plugin failed to start, "
        "2 usage or configuration error (TLS files included), 3 a listener cannot start, 4 the store cannot be opened "
        "(docs/operations.md).",
    )
    parser.add_argument("--version", action="version", version=f"hookmq {__version__} ({build()})")
    _add_broker_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the broker (the default command)")
    _add_broker_options(serve, suppress=True)
    serve.set_defaults(func=serve_command)
    _add_plugins_command(commands)
    _add_config_commands(commands)
    wanted = _command_in(argv, parser)
    for name, (module, help_text) in LAZY_COMMANDS.items():
        _add_lazy_command(commands, name, module, help_text, load=name == wanted)
    _add_plugin_commands(commands)
    return parser


def _command_in(argv: Sequence[str], parser: argparse.ArgumentParser) -> str | None:
    """The sub-command word of ``argv``, skipping top-level options and their values."""
    takes_value = {
        option for action in parser._actions if action.nargs != 0 for option in action.option_strings
    }
    tokens = iter(argv)
    for token in tokens:
        if token == "--":
            return next(tokens, None)
        if not token.startswith("-"):
            return token
        if "=" not in token and token in takes_value:
            next(tokens, None)
    return None


def _add_plugins_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    plugins = commands.add_parser("plugins", help="list installed plugins: version, hooks, enabled")
    plugins.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_broker_options(plugins, suppress=True)
    plugins.set_defaults(func=plugins_command)


def _add_config_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = commands.add_parser("config", help="show or check configuration")
    config.set_defaults(func=lambda args: _usage(config))
    actions = config.add_subparsers(dest="config_command", metavar="ACTION")
    show = actions.add_parser(
        "show", help="print the configuration in force (file + environment + flags, enabled plugins' defaults) as TOML"
    )
    show.add_argument("--show-secrets", action="store_true", help="print passwords and tokens instead of <redacted>")
    _add_broker_options(show, suppress=True)
    show.set_defaults(func=config_show_command)
    check = actions.add_parser("check", help="validate a configuration file, plugin tables included")
    check.add_argument("file", metavar="FILE", help="the TOML file to check")
    check.set_defaults(func=config_check_command)
    reference = actions.add_parser("reference", help="print the reference of every key as Markdown")
    reference.add_argument(
        "--update", metavar="FILE", help="rewrite the generated part of FILE (docs/configuration.md) instead"
    )
    reference.set_defaults(func=config_reference_command)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _add_lazy_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str, module_name: str, help_text: str, load: bool
) -> None:
    """Add a command whose module is imported only when the command is the one being run."""
    parser = commands.add_parser(name, help=help_text)
    if not load:
        return
    try:
        module: ModuleType = importlib.import_module(module_name)
    except ImportError as error:
        message = f"hookmq {name} is not available: {error}"
        parser.set_defaults(func=lambda args: _fail(message))
        return
    module.add_arguments(parser)
    parser.set_defaults(func=module.run)


def _fail(message: str, status: int = EXIT_FAILURE) -> int:
    """Print one line naming what failed and return the exit status."""
    print(f"hookmq: {' '.join(message.split())}", file=sys.stderr)
    return status


def _add_plugin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Let every importable installed plugin add its sub-commands (``register_commands``)."""
    plugins, errors = installed_plugins()
    for name, error in errors.items():
        logger.debug("plugin %r not imported for its commands: %s", name, error)
    pm = HookmqPluginManager()
    for name, plugin in plugins.items():
        try:
            pm.register(plugin, name)
        except Exception as error:
            logger.debug("plugin %r not registered for its commands: %s", name, error)
    HookFacade(pm).notify_sync("register_commands", subparsers=commands)


# -------------------------------------------------------------------------
# From flags to configuration
# -------------------------------------------------------------------------


FLAG_KEYS: dict[str, str] = {
    "cluster.mode": "--mode",
    "cluster.port": "--port",
    "cluster.members": "--members",
    "plugins.dashboard.address": "--info",
    "storage.backend": "--redis",
    "plugins.redis_store.url": "--redis",
    "log.level": "--log-level",
    "server.workers": "--workers",
}
"""The dotted key each Go-style flag sets -> the flag, which errors about the key then name."""


def _flag_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Dotted configuration keys set by the Go-style flags."""
    overrides: dict[str, Any] = {}
    if args.mode is not None:
        overrides["cluster.mode"] = args.mode
    if args.port is not None:
        overrides["cluster.port"] = args.port
    if args.members is not None:
        overrides["cluster.members"] = args.members
    if args.info is not None:
        overrides["plugins.dashboard.address"] = args.info
    if args.redis is not None:
        overrides["storage.backend"] = "redis"
        overrides["plugins.redis_store.url"] = args.redis if "://" in args.redis else f"redis://{args.redis}"
    if args.log_level is not None:
        overrides["log.level"] = args.log_level
    if getattr(args, "workers", None) is not None:
        overrides["server.workers"] = args.workers
    return overrides


def effective_config(args: argparse.Namespace) -> Config:
    """The configuration the flags, the environment and the file give together."""
    config = load_config(args.config, _flag_overrides(args), override_names=FLAG_KEYS)
    config.disabled_plugins.extend(name for name in args.disable_plugin if name not in config.disabled_plugins)
    if args.tcp is not None:
        config = with_listener_address(config, "tcp", args.tcp, "--tcp")
    if args.ws is not None:
        config = with_listener_address(config, "ws", args.ws, "--ws")
    return config


# -------------------------------------------------------------------------
# Commands
# -------------------------------------------------------------------------


def serve_command(args: argparse.Namespace) -> int:
    """Run the broker until SIGINT or SIGTERM.

    A setup error (a port in use, a host that does not resolve, an unreachable store, a TLS
    file that cannot be used) ends it with one line and the status of `hookmq.exits`.
    """
    config = effective_config(args)
    configure_logging(config.log.level, config.log.format)
    workers = config.server.worker_count()
    if workers > 1:
        return _serve_workers(config, workers)
    try:
        from .engine import Broker  # type: ignore[attr-defined,unused-ignore]
    except ImportError as error:
        return _fail(f"the broker engine is not available: {error}")
    broker = Broker(config)
    # The broker handles SIGINT itself once serving; this covers a ^C during start-up.
    with contextlib.suppress(KeyboardInterrupt):
        try:
            run_async(broker.serve())
        except SetupError as error:
            return _fail(str(error), error.exit_status)
        except PluginError as error:
            return _fail(str(error))
    return EXIT_OK


def _serve_workers(config: Config, workers: int) -> int:
    """``[server] workers`` > 1: supervise that many broker processes (:mod:`hookmq.workers`)."""
    from .workers import run_workers

    with contextlib.suppress(KeyboardInterrupt):
        try:
            return run_workers(config, workers)
        except SetupError as error:
            return _fail(str(error), error.exit_status)
    return EXIT_OK


def run_async(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on uvloop when it is installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        on_uvloop = False
    else:
        on_uvloop = True
    # Not from inside the `except`: the broker would run with the ImportError as the exception
    # being handled, and mypyc-compiled coroutines took it for their own (every connection failed).
    if not on_uvloop:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def plugins_command(args: argparse.Namespace) -> int:
    """List the installed plugins."""
    infos = describe_plugins(effective_config(args))
    if args.json:
        print(json.dumps([asdict(info) for info in infos], indent=2))
    else:
        print(format_plugins(infos))
    return 0


def format_plugins(infos: Sequence[PluginInfo]) -> str:
    """A plain-text table of plugins, with why each is enabled or not."""
    rows = [("NAME", "VERSION", "ENABLED", "HOOKS")]
    for info in infos:
        hooks = ", ".join(info.hooks) or "-"
        rows.append((info.name, info.version or "-", "yes" if info.enabled else "no", hooks))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3] for row in rows]
    for info in infos:
        lines.append(f"{info.name}: {info.reason}" + (f" ({info.error})" if info.error else ""))
    return "\n".join(lines)


def config_show_command(args: argparse.Namespace) -> int:
    """Print the configuration in force, enabled plugins' defaults included, secrets redacted."""
    config = effective_config(args)
    pm = build_plugin_manager(config)
    plugins = {name: (info.enabled, pm.plugin_settings(name)) for name, info in pm.infos.items()}
    print(effective_toml(config, plugins, show_secrets=args.show_secrets), end="")
    return EXIT_OK


def config_check_command(args: argparse.Namespace) -> int:
    """Validate a file: the core tables, every enabled plugin's table, and the listeners' TLS files."""
    config = load_config(args.file, environ={})
    build_plugin_manager(config)
    problems = [
        f"{config.source}: listeners[{index}].{key}: {message}"
        for index, listener in enumerate(config.listeners)
        for key, message in tls_material_problems(listener)
    ]
    if problems:
        raise ConfigError("\n".join(problems), config.source)
    print(f"{args.file}: OK")
    return EXIT_OK


def config_reference_command(args: argparse.Namespace) -> int:
    """Print the Markdown reference that docs/configuration.md embeds, or update that file."""
    if args.update is None:
        print(reference_markdown(), end="")
        return 0
    path = Path(args.update)
    path.write_text(embed_reference(path.read_text(), reference_markdown()))
    print(f"{path}: reference updated")
    return 0


REFERENCE_BEGIN = "<!-- BEGIN GENERATED REFERENCE: hookmq config reference --update docs/configuration.md -->"
REFERENCE_END = "<!-- END GENERATED REFERENCE -->"


def embed_reference(document: str, reference: str) -> str:
    """Replace what lies between the two reference markers of ``document``."""
    start = document.index(REFERENCE_BEGIN) + len(REFERENCE_BEGIN)
    end = document.index(REFERENCE_END)
    return f"{document[:start]}\n\n{reference}\n{document[end:]}"


def reference_markdown() -> str:
    """The reference of the core tables and of every installed hookmq plugin's table."""
    plugins, _ = installed_plugins(distribution="hookmq")
    return config_reference(plugin_settings_models(plugins))


# -------------------------------------------------------------------------
# Entry point
# -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hookmq`` command; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    handler: Handler = getattr(args, "func", serve_command)
    try:
        status = handler(args)
    except ConfigError as error:
        # One self-contained line per problem, each naming the file (or flag) and the key.
        for line in str(error).splitlines():
            print(f"hookmq: configuration error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`hookmq cluster members | head -3`): stop quietly, as other tools do.
        # Python would report the pipe again when it flushes stdout at exit, so stdout goes to /dev/null.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return int(status or 0)
