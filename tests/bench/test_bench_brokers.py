"""How ``compare`` names and finds the brokers it starts: hookmq with workers, its listening sockets, its CPU."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from hookmq.bench.brokers import known_broker, listening_sockets, split_workers
from hookmq.bench.sysinfo import _own_cpu_seconds, descendants, read_cpu_seconds


def test_a_workers_suffix_names_hookmq_with_that_many_workers() -> None:
    assert split_workers("hookmq:w2") == ("hookmq", 2)
    assert split_workers("hookmq@/opt/venv:w4") == ("hookmq@/opt/venv", 4)
    assert split_workers("hookmq") == ("hookmq", 1) and split_workers("mosquitto") == ("mosquitto", 1)
    assert known_broker("hookmq:w2") and known_broker("hookmq@/x:w3")
    assert not known_broker("mosquitto:w2") and not known_broker("hookmq:wx")


def test_every_socket_listening_on_a_port_is_counted() -> None:
    with socket.socket() as first, socket.socket() as second:
        for sock in (first, second):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        first.bind(("127.0.0.1", 0))
        port = first.getsockname()[1]
        second.bind(("127.0.0.1", port))
        assert listening_sockets(port) == 0
        first.listen()
        assert listening_sockets(port) == 1
        second.listen()
        assert listening_sockets(port) == 2


def test_a_brokers_cpu_includes_its_children() -> None:
    burn = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass\nprint('burnt', flush=True)\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "burnt"
        assert child.pid in descendants(os.getpid())
        mine, theirs = _own_cpu_seconds(os.getpid()), _own_cpu_seconds(child.pid)
        assert mine is not None and theirs is not None and theirs >= 0.2
        total = read_cpu_seconds(os.getpid())  # read last: CPU only grows
        assert total is not None and total >= mine + theirs
    finally:
        child.kill()
        child.wait(10)
    assert child.pid not in descendants(os.getpid())
