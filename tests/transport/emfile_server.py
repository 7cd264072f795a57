"""A TCP echo listener run in its own process with a tiny file-descriptor limit.

Prints its port, then serves until stdin closes. Used by test_listeners to show that running
out of descriptors (EMFILE on accept) does not stop the listener.
"""

from __future__ import annotations

import asyncio
import resource
import sys

from transport_helpers import echo

from hookmq.transport import ListenerConfig, start_listeners


async def main(limit: int) -> None:
    (listener,) = await start_listeners([ListenerConfig(name="tight", type="tcp", address="127.0.0.1:0")], echo)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(listener.address[1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await listener.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
