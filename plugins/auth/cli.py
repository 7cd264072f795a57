"""``hookmq passwd``: print a password hash to paste into ``[plugins.auth.users]`` or Redis."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TextIO

from .passwords import available_schemes, hash_password


class PasswordInputError(Exception):
    """The password could not be read (mismatch, empty, end of input)."""


def add_passwd_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``passwd`` sub-command on the ``hookmq`` command line."""
    parser = subparsers.add_parser(
        "passwd",
        help="print a password hash for [plugins.auth.users] (auth plugin)",
        description="Read a password (asked twice, or one line from stdin) and print its hash.",
    )
    parser.add_argument(
        "--stdin", action="store_true",
        help="read the password from the first line of standard input instead of prompting",
    )
    parser.add_argument(
        "--scheme", choices=available_schemes(), default="scrypt", help="hash scheme (default: scrypt)",
    )
    parser.set_defaults(func=run_passwd)


def read_password(from_stdin: bool, stdin: TextIO | None = None) -> str:
    """The password typed twice at a prompt, or the first line of ``stdin`` without its newline."""
    if from_stdin:
        line = (stdin or sys.stdin).readline()
        password = line[:-1] if line.endswith("\n") else line
        password = password[:-1] if password.endswith("\r") else password
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            raise PasswordInputError("the passwords do not match")
    if not password:
        raise PasswordInputError("the password is empty")
    return password


def run_passwd(args: argparse.Namespace) -> int:
    """Read a password and print its hash; exit status 1 (with a message on stderr) on bad input."""
    try:
        password = read_password(args.stdin)
    except PasswordInputError as exc:
        print(f"hookmq passwd: {exc}", file=sys.stderr)
        return 1
    except (EOFError, KeyboardInterrupt):
        print("hookmq passwd: no password given", file=sys.stderr)
        return 1
    print(hash_password(password, scheme=args.scheme))
    return 0
