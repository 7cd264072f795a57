"""The packet classes: written-out constructors, immutability, and how they print (both builds)."""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

import pytest

from hookmq.mqtt import packets
from hookmq.mqtt.packets import NO_PROPERTIES, Properties, Puback, Publish

# Every packet class; several have their __init__ written out rather than generated (mypyc
# compiles only the former), and a written-out one must still set every field as the generated one would.
PACKET_CLASSES = [cls for _, cls in inspect.getmembers(packets, inspect.isclass) if dataclasses.is_dataclass(cls)]


def test_every_packet_class_is_checked() -> None:
    assert {Publish, Puback, packets.Connect, packets.Connack, packets.Pubrec} <= set(PACKET_CLASSES)


def source_annotations() -> dict[tuple[str, str], str]:
    """(class, field) -> the annotation as written (a compiled class keeps only erased run-time types)."""
    tree = ast.parse((Path(__file__).parents[2] / "core" / "mqtt" / "packets.py").read_text())
    return {(node.name, item.target.id): ast.unparse(item.annotation)
            for node in tree.body if isinstance(node, ast.ClassDef)
            for item in node.body if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}


ANNOTATIONS = source_annotations()


def marker(annotation: str, index: int) -> object:
    """A value of the field's type (the compiled build checks them) that no default has."""
    kind = annotation.split(" | ")[0]
    if kind.startswith("tuple"):
        return (index + 1,)  # only `tuple` is checked, not the items
    values: dict[str, object] = {
        "str": f"value {index}", "bytes": b"value %d" % index, "int": 1000 + index, "bool": True,
        "Properties": Properties(content_type=f"value {index}"), "Will": packets.Will(f"will {index}"),
        "SubscriptionOptions": packets.SubscriptionOptions(qos=2, no_local=True),
        "ProtocolLevel": packets.ProtocolLevel.MQTT_3_1,
    }
    return values[kind]


@pytest.mark.parametrize("cls", PACKET_CLASSES, ids=lambda cls: cls.__name__)
def test_a_constructor_sets_every_field_by_keyword_and_keeps_the_defaults(cls: type) -> None:
    fields = dataclasses.fields(cls)
    markers = {item.name: marker(ANNOTATIONS[cls.__name__, item.name], index) for index, item in enumerate(fields)}
    packet = cls(**markers)
    assert {item.name: getattr(packet, item.name) for item in fields} == markers
    required = {item.name: markers[item.name] for item in fields
                if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING}
    defaults = cls(**required)
    for item in fields:
        if item.name not in required:
            expected = item.default if item.default_factory is dataclasses.MISSING else item.default_factory()
            assert getattr(defaults, item.name) == expected


def test_packets_stay_immutable_and_compare_by_value() -> None:
    packet = Publish("a/b", b"x", 1, False, False, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        packet.qos = 2  # type: ignore[misc]
    assert packet == Publish("a/b", b"x", 1, False, False, 5) and hash(packet) == hash(Publish("a/b", b"x", 1, False, False, 5))
    changed = dataclasses.replace(packet, qos=0, packet_id=0)
    assert (changed.qos, changed.packet_id, changed.topic, packet.qos) == (0, 0, "a/b", 1)


def test_properties_print_only_what_is_present_and_packets_print_with_them() -> None:
    properties = Properties(message_expiry_interval=30, user_properties=(("k", "v"),))
    assert repr(properties) == "Properties(message_expiry_interval=30, user_properties=(('k', 'v'),))"
    assert repr(NO_PROPERTIES) == "Properties()"
    assert repr(Publish("t", properties=properties)).endswith("properties=Properties(message_expiry_interval=30, user_properties=(('k', 'v'),)))")
