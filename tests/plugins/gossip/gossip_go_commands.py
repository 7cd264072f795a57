"""Run the Go broker's two cluster commands with hookmq, inside the current (fresh) network namespace.

Executed by test_gossip_go_commands.py under ``unshare -n``: brings ``lo`` up, starts

    hookmq --mode=true --port=7946
    hookmq --mode=true --port=7947 --members=127.0.0.1:7946 --tcp=:1885 --ws=:1886 --info=:1887

waits (bounded) until each has logged the other's join and is serving (its start-up banner
logged: a ^C before that ends the process without a leave, as ``hookmq.cli`` documents),
stops both with SIGINT, and prints both logs as JSON on stdout.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

JOINED = re.compile(r"A node has joined: (\S+)")
#: The start-up banner's last line: the broker is serving and handles SIGINT itself.
SERVING = "hookmq.broker: plugins: "


def main() -> int:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hookmq = [sys.executable, "-m", "hookmq"]
    first = subprocess.Popen([*hookmq, "--mode=true", "--port=7946"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(1.0)
    second = subprocess.Popen(
        [*hookmq, "--mode=true", "--port=7947", "--members=127.0.0.1:7946", "--tcp=:1885", "--ws=:1886", "--info=:1887"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    logs: dict[str, list[str]] = {"first": [], "second": []}
    import threading

    def read(name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            logs[name].append(line.rstrip("\n"))

    threads = [threading.Thread(target=read, args=item, daemon=True) for item in (("first", first), ("second", second))]
    for thread in threads:
        thread.start()

    def both_joined_and_serving() -> bool:
        names = {key: {m.group(1) for line in lines if (m := JOINED.search(line))} for key, lines in logs.items()}
        serving = all(any(SERVING in line for line in lines) for lines in logs.values())
        return serving and len(names["first"]) >= 2 and names["first"] == names["second"]

    end = time.monotonic() + 60
    while time.monotonic() < end and not both_joined_and_serving():
        time.sleep(0.1)
    time.sleep(0.5)  # the banner is logged just before the signal handlers are installed
    for proc in (second, first):
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for thread in threads:
        thread.join(5)
    print(json.dumps(logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
