"""``python -m hookmq``: the same as the ``hookmq`` command."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
