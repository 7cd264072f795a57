"""Regenerate ../lzw_vectors.json with Go's compress/lzw (needs `go`); run from anywhere.

    python tests/plugins/gossip/wire/golzw/make_vectors.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from gossip_lzw_inputs import VECTOR_INPUTS  # noqa: E402


def build(out_dir: Path) -> Path:
    """Build the golzw filter offline (standard library only) into ``out_dir``."""
    binary = out_dir / "golzw"
    env = {"GO111MODULE": "off", "GOPATH": str(out_dir / "gopath"), "GOCACHE": str(out_dir / "gocache"),
           "GOFLAGS": "", "CGO_ENABLED": "0", "PATH": "/usr/bin:/bin:/usr/local/go/bin", "HOME": str(out_dir)}
    subprocess.run(["go", "build", "-o", str(binary), str(HERE / "main.go")], check=True, env=env, cwd=out_dir)
    return binary


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        binary = build(Path(tmp))
        vectors = {name: subprocess.run([str(binary), "c"], input=data, capture_output=True, check=True).stdout.hex()
                   for name, data in VECTOR_INPUTS.items()}
    (HERE.parent / "lzw_vectors.json").write_text(json.dumps(vectors, indent=1) + "\n")


if __name__ == "__main__":
    main()
