"""The complete example of docs/auth.md validates and behaves as documented."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from broker_helpers import raw, running_broker

from hookmq.config import Config
from hookmq.mqtt.packets import Puback
from hookmq.plugins.auth.settings import AuthSettings

pytestmark = pytest.mark.timeout(60)

DOC = Path(__file__).resolve().parents[3] / "docs" / "auth.md"


def example() -> dict[str, Any]:
    """The first TOML block of docs/auth.md."""
    block = re.search(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    assert block is not None
    return tomllib.loads(block.group(1))


def test_example_validates_as_a_whole_configuration() -> None:
    data = example()
    Config.from_mapping(data, source=str(DOC))
    settings = AuthSettings.model_validate(data["plugins"]["auth"])
    assert settings.tls_identity == "cn" and len(settings.acl) == 7


@pytest.mark.parametrize("level", [4, 5])
async def test_example_denies_test_nosubscribe_to_everyone(level: int) -> None:
    table = {**example()["plugins"]["auth"], "allow_anonymous": True}
    async with running_broker(table) as broker:
        client, code = await raw(broker, level, client_id=f"interop-{level}")
        assert code == 0
        refused = 0x87 if level == 5 else 0x80
        assert (await client.subscribe("test/nosubscribe", qos=1)).reason_codes == (refused,)
        assert (await client.subscribe("TopicA/+", qos=1)).reason_codes == (1,)
        assert (await client.subscribe("#", qos=0)).reason_codes == (0,)
        assert (await client.subscribe("$SYS/#", qos=0)).reason_codes == (refused,)
        puback = await client.publish("test/nosubscribe", b"x", qos=1)
        assert isinstance(puback, Puback) and puback.reason_code == (0x87 if level == 5 else 0)
        await client.disconnect()
