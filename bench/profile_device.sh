#!/usr/bin/env bash
# Profile hookmq under the device pattern (issue 17): each pass starts a fresh broker, drives it
# with `hookmq bench --workload device`, and stops it.
#   1. plain run (the figures to compare the others with)
#   2. py-spy: collapsed stacks (stacks.txt) and a flame graph (flame.svg)
#   3. perf syscall tracepoints: system calls per message; epoll_wait calls = event-loop
#      wake-ups (strace -c -f counts the same but slows the broker so much that packets pile
#      up between reads: PASSES=strace runs it anyway)
#   4. perf uprobes on CPython's allocator entry points: allocator calls per message (alloc)
#   5. perf record -e cpu-clock: CPU by shared object and symbol (dso)
# Then bench/profile_summary.py prints the tables.
#
# Usage: bench/profile_device.sh            (QoS 1, 100 clients x 1000 messages, uvloop)
#        QOS=0 CLIENTS=100 MESSAGES=1000 LOOP=asyncio PASSES="plain pyspy" bench/profile_device.sh
#        SPY_NATIVE=--native PYTHON=.venv-compiled/bin/python bench/profile_device.sh   (py-spy sees
#        into compiled modules only with --native, which pauses the broker at each sample)
# Needs: py-spy (pip install py-spy), strace and perf (Debian linux-perf) for their passes.
# Run it inside a private network namespace on a shared machine:
#   unshare -n sh -c 'ip link set lo up && exec bench/profile_device.sh'
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
QOS=${QOS:-1}
CLIENTS=${CLIENTS:-100}
MESSAGES=${MESSAGES:-1000}
LOOP=${LOOP:-uvloop}
PASSES=${PASSES:-plain pyspy syscalls alloc dso}
OUT=${OUT:-bench/results/profile-q$QOS-${CLIENTS}x$MESSAGES-$LOOP-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
LIBPYTHON=$("$PY" -c 'import sysconfig, os; print(os.path.join(sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("INSTSONAME")))')

port=$("$PY" -c 'from hookmq.bench.brokers import free_port; print(free_port())')
cat > "$OUT/hookmq.toml" <<EOT
disabled_plugins = ["dashboard"]

[mqtt]
max_queued_messages = 1000000

[[listeners]]
name = "tcp"
type = "tcp"
address = "127.0.0.1:$port"

[log]
level = "WARNING"
EOT

start_broker() {
    if [ "$LOOP" = asyncio ]; then
        # uvloop made unimportable: hookmq's run_async falls back to asyncio's own loop.
        "$PY" -c 'import sys; sys.modules["uvloop"] = None; from hookmq.cli import main; sys.exit(main())' \
            -c "$OUT/hookmq.toml" serve > "$OUT/broker-$1.log" 2>&1 &
    else
        "$PY" -m hookmq -c "$OUT/hookmq.toml" serve > "$OUT/broker-$1.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do
        "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && return
        sleep 0.1
    done
    echo "broker did not start; see $OUT/broker-$1.log" >&2
    exit 1
}

stop_broker() {
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

drive() {
    "$PY" -m hookmq.bench --url "mqtt://127.0.0.1:$port" --workload device --clients "$CLIENTS" \
        --messages "${2:-$MESSAGES}" --qos "$QOS" --no-progress --broker-pid "$pid" --json "$OUT/$1.json" \
        > "$OUT/$1.out" 2>&1 || echo "pass $1: the run was incomplete, see $OUT/$1.out" >&2
}

for pass in $PASSES; do
    echo "pass $pass ($(uptime))" >&2
    start_broker "$pass"
    case $pass in
        plain)
            drive plain
            ;;
        pyspy)
            py-spy record ${SPY_NATIVE:---nonblocking} --rate 250 --format raw -o "$OUT/stacks.txt" -p "$pid" > "$OUT/py-spy.log" 2>&1 &
            spy=$!
            sleep 1
            drive pyspy
            kill -INT "$spy"; wait "$spy" || true
            py-spy record --nonblocking --rate 250 -o "$OUT/flame.svg" -p "$pid" >> "$OUT/py-spy.log" 2>&1 &
            spy=$!
            sleep 1
            drive pyspy-svg
            kill -INT "$spy"; wait "$spy" || true
            ;;
        syscalls)
            events="raw_syscalls:sys_enter"
            for call in read recvfrom write sendto writev epoll_wait epoll_pwait epoll_ctl getpid; do
                events="$events,syscalls:sys_enter_$call"
            done
            perf stat -x, -e "$events" -p "$pid" -o "$OUT/syscalls.txt" &
            counter=$!
            sleep 1
            drive syscalls
            kill -INT "$counter"; wait "$counter" || true
            ;;
        strace)
            strace -c -f -p "$pid" -o "$OUT/strace.txt" &
            tracer=$!
            sleep 1
            drive strace
            kill -INT "$tracer"; wait "$tracer" || true
            ;;
        dso)
            # Where the CPU goes by shared object: CPython's interpreter, uvloop/libuv, the kernel.
            perf record -q -F 499 -e cpu-clock -p "$pid" -o "$OUT/cpu.data" 2> "$OUT/perf-record.log" &
            recorder=$!
            sleep 1
            drive dso
            kill -INT "$recorder"; wait "$recorder" || true
            perf report -i "$OUT/cpu.data" --stdio --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' > "$OUT/dso.txt" || true
            perf report -i "$OUT/cpu.data" --stdio --sort dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 > "$OUT/symbols.txt" || true
            ;;
        alloc)
            events=""
            for fn in PyObject_Malloc PyObject_Calloc PyObject_Realloc PyMem_Malloc PyMem_Realloc; do
                perf probe -q -x "$LIBPYTHON" "$fn" 2>/dev/null || true
                events="$events,probe_libpython3:$fn"
            done
            perf stat -e "${events#,}" -p "$pid" -o "$OUT/alloc.txt" &
            counter=$!
            sleep 1
            # Each uprobe hit traps into the kernel: a tenth of the messages keeps the run short.
            drive alloc $(( (MESSAGES + 9) / 10 ))
            kill -INT "$counter"; wait "$counter" || true
            perf probe -q -d 'probe_libpython3:*' 2>/dev/null || true  # probes are system-wide
            ;;
    esac
    stop_broker
done
"$PY" bench/profile_summary.py "$OUT" "$CLIENTS" "$MESSAGES" "$QOS" | tee "$OUT/summary.md"
