#!/usr/bin/env bash
# Compare hookmq with mosquitto and amqtt on this machine; results land in bench/results/.
# Usage: bench/compare.sh [--quick] [any other `hookmq bench compare` option]
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB RAM" >&2
exec python -m hookmq.bench compare --out bench/results "$@"
