"""``python -m hookmq.bench``: the same as ``hookmq bench``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
