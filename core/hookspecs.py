"""The hook specifications of hookmq: the contract between the broker core and its plugins.

Every hook takes keyword arguments only, and an implementation may accept any subset of the
arguments a spec lists (pluggy's opt-in arguments), so new arguments can be added later
without breaking existing plugins.

The core never calls ``pm.hook.<name>(...)`` for these hooks: pluggy is synchronous and its
``firstresult`` stops at the first coroutine object. :class:`hookmq.hooks.HookFacade` walks the
implementations itself, in pluggy's order (last registered first, ``tryfirst``/``trylast``
respected), and awaits each awaitable result before the next implementation runs. So any
implementation may be ``async def`` unless its spec says "sync only".

Kinds (how several implementations combine), named in each docstring:

- **notify**: every implementation runs; return values are ignored; an exception is logged
  with the plugin's name and never reaches the client or the broker.
- **transform**: implementations form a chain; a non-``None`` return replaces the named
  argument for the next implementation and for the core; ``None`` keeps it unchanged.
- **decide**: tri-state vote. ``False`` denies (and stops the vote), ``True`` allows,
  ``None`` abstains. Any deny denies; else any allow allows; if everyone abstains the result
  is "allow" when no plugin implements the hook and "deny" otherwise. An exception counts as
  a deny.
- **first**: the first non-``None`` result wins; later implementations are not called.
- **per-plugin**: the facade passes each implementation the validated ``settings`` of its own
  plugin (the model from :func:`plugin_settings_model`, or ``None``).
- **collect**: every implementation runs, synchronously (sync only: nothing is awaited on the
  message path); the non-``None`` results are collected for the engine (e.g. acknowledgements
  to wait for).

"msg" marks hooks on the per-message path: they run for every packet or message, so keep
them fast and never block the event loop. A hook with no implementation costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    import argparse

    from pydantic import BaseModel

    from .config import Config
    from .mqtt.packets import Auth, Connect, Publish, Subscribe, Unsubscribe, Will

PROJECT_NAME = "hookmq"
"""The one name tying together the hook markers and the entry-point group."""

hookspec = HookspecMarker(PROJECT_NAME)
"""Marks a function as a hook specification (used by this module only)."""

hookimpl = HookimplMarker(PROJECT_NAME)
"""Marks a plugin function as a hook implementation: ``from hookmq import hookimpl``."""

# The engine's client and broker objects and the store interface are documented in
# docs/architecture.md; they are typed as Any here so this module stays import-cycle free.
Client = Any
Broker = Any
Packet = Any
SubscriberEntry = Any
Message = Any
StoreFactory = Callable[["Config"], Any]


# -------------------------------------------------------------------------
# Configuration and provider hooks
# -------------------------------------------------------------------------


@hookspec
def plugin_settings_model() -> type[BaseModel] | None:
    """Return the pydantic model of this plugin's ``[plugins.<name>]`` table, or ``None``.

    Fires once per plugin while the plugin manager is built, before anything else.

    Kind: per-plugin, sync only. Each plugin answers for itself; the answer is not combined
    with other plugins'. The table is validated by the returned model (give it
    ``ConfigDict(extra="forbid")`` so a misspelt key is an error); the ``enabled`` key is
    handled by hookmq and never reaches the model. The validated instance is what the
    ``settings`` argument of the per-plugin hooks receives. Returning ``None`` (or not
    implementing the hook) means the plugin takes no settings: any key in its table is an
    error. Not on the per-message path.
    """


@hookspec
def register_stores(register: Callable[[str, StoreFactory], None], settings: BaseModel | None) -> None:
    """Offer store backends by calling ``register(name, factory)`` for each.

    Fires once when the broker starts, before the store is opened.

    :param register: ``register(name: str, factory: Callable[[Config], Store])``. The factory
        builds the store from the broker's configuration; ``[storage] backend = "<name>"``
        selects which registered backend is used (never "whichever plugin registered last").
        Registering a name twice is an error.
    :param settings: this plugin's validated ``[plugins.<name>]`` settings, or ``None``.

    Kind: per-plugin. The return value is ignored. Not on the per-message path.
    """


@hookspec
def register_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``hookmq <command>`` sub-commands to the command line.

    Fires once per ``hookmq`` invocation, before the command line is parsed, for every
    installed plugin that imports (enabled or not: a command such as ``hookmq passwd`` is
    useful before the plugin is switched on).

    :param subparsers: the ``argparse`` sub-parsers object; call ``subparsers.add_parser(...)``
        and give the new parser ``set_defaults(func=run)`` where ``run(args) -> int | None``
        is what the command does (its return value is the exit status).

    Kind: notify, sync only. Not on the per-message path.
    """


# -------------------------------------------------------------------------
# Lifespan hooks
# -------------------------------------------------------------------------


@hookspec
def plugin_start(broker: Broker, settings: BaseModel | None) -> None:
    """Open the plugin's own resources (connection pools, servers, background tasks).

    Fires once while the broker starts: after the store is open, before the listeners
    accept clients.

    :param broker: the :class:`hookmq.engine.Broker` being started.
    :param settings: this plugin's validated ``[plugins.<name>]`` settings, or ``None``.

    Kind: per-plugin. The return value is ignored. An exception aborts the broker's start,
    naming the plugin. Not on the per-message path.
    """


@hookspec
def plugin_stop(broker: Broker) -> None:
    """Close what :func:`plugin_start` opened.

    Fires once while the broker stops, after the listeners are closed and clients are
    disconnected.

    Kind: notify (errors are logged and the other plugins still stop). Not on the
    per-message path.
    """


@hookspec
def plugin_status(broker: Broker, settings: BaseModel | None) -> str | None:
    """Say in one line what the plugin is doing, for the startup banner.

    Fires once while the broker starts, after the listeners accept clients and before
    :func:`on_started`. For example the dashboard answers its URL, the auth plugin how many
    users and ACL rules it has. Never put a secret in it: the banner goes to the log.

    :param broker: the :class:`hookmq.engine.Broker` that started.
    :param settings: this plugin's validated ``[plugins.<name>]`` settings, or ``None``.

    Kind: per-plugin. Return the line, or ``None`` to say nothing. An exception is logged
    and costs only the line. Not on the per-message path.
    """


@hookspec
def on_started(broker: Broker) -> None:
    """The broker is serving: every listener accepts clients.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_stopped(broker: Broker) -> None:
    """The broker has stopped: listeners are closed and clients disconnected.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_sys_info_tick(broker: Broker, info: dict[str, int | float | str]) -> None:
    """The ``$SYS`` figures were refreshed (every ``[mqtt] sys_interval`` seconds).

    :param info: a copy of :meth:`Broker.info` (version, uptime, bytes, packets, messages,
        clients, subscriptions, retained, inflight, dropped).

    Kind: notify. Not on the per-message path.
    """


# -------------------------------------------------------------------------
# Connection hooks
# -------------------------------------------------------------------------


@hookspec
def on_connect_authenticate(client: Client, connect: Connect) -> bool | None:
    """Decide whether a client may connect.

    Fires for every CONNECT that passed protocol validation, after :func:`on_connect`.

    :param client: the connecting client (``client_id``, ``username``, ``remote_address``,
        ``listener``, ``protocol_level``, ``tls_peer_certificate``, ``connect``).
    :param connect: the CONNECT packet (username, password, properties, will).
    :return: ``True`` allow, ``False`` deny, ``None`` abstain.

    Kind: decide. With no implementation every client is allowed; once any plugin implements
    it, a client that no plugin allows is refused with a failing CONNACK. Not on the
    per-message path.
    """


@hookspec
def on_acl_check(client: Client, topic: str, write: bool) -> bool | None:
    """Decide whether a client may publish to, subscribe to, or receive from a topic.

    Fires for every inbound PUBLISH (``write=True``, the topic name), for the will topic of a
    CONNECT (``write=True``; a refusal answers CONNACK 0x87 / 0x05) and for every filter of a
    SUBSCRIBE (``write=False``, the filter, ``$share/<group>/`` included). Delivery to a
    subscriber is decided once, when it subscribes: there is no per-delivery call, so the
    cost of a message does not grow with the rules.

    :return: ``True`` allow, ``False`` deny, ``None`` abstain.

    Kind: decide (as :func:`on_connect_authenticate`). On the per-message path (msg).
    """


@hookspec
def on_connect(client: Client, connect: Connect) -> None:
    """A valid CONNECT arrived, before authentication.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_session_established(client: Client, connect: Connect, session_present: bool) -> None:
    """A client is connected: CONNACK was sent and any resumed session restored.

    :param session_present: whether an existing session was resumed.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_disconnect(client: Client, reason_code: int, error: str | None) -> None:
    """A client's connection ended (only for clients that were accepted).

    :param reason_code: the DISCONNECT reason code (0 for a normal disconnection; the
        server's reason when the server closed it).
    :param error: what went wrong, or ``None`` after a normal DISCONNECT.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_auth_packet(client: Client, packet: Auth) -> Auth | None:
    """Answer an MQTT 5 AUTH packet (enhanced authentication or re-authentication).

    :return: the AUTH packet to reply with (reason 0x18 continue, 0x00 success, >= 0x80
        failure), or ``None`` to leave it to another plugin.

    Kind: first (the first non-``None`` reply wins). When no plugin answers a CONNECT's
    exchange, the client gets CONNACK 0x8C Bad authentication method; when none answers a
    re-authentication, DISCONNECT 0x87 Not authorized. Not on the per-message path.
    """


# -------------------------------------------------------------------------
# Packet hooks
# -------------------------------------------------------------------------


@hookspec
def on_packet_read(client: Client, packet: Packet) -> Packet | None:
    """Every packet decoded from a client, before the engine handles it.

    :return: a packet to handle instead, or ``None`` to keep it.

    Kind: transform on ``packet``. On the per-message path (msg).
    """


@hookspec
def on_packet_encode(client: Client, packet: Packet) -> Packet | None:
    """Every packet about to be encoded for a client.

    :return: a packet to encode instead, or ``None`` to keep it.

    Kind: transform on ``packet``. On the per-message path (msg).
    """


@hookspec
def on_packet_sent(client: Client, packet: Packet, data: bytes) -> None:
    """A packet was written (or buffered) to a client.

    :param data: the bytes written.

    Kind: notify. On the per-message path (msg).
    """


# -------------------------------------------------------------------------
# Subscription hooks
# -------------------------------------------------------------------------


@hookspec
def on_subscribe(client: Client, packet: Subscribe) -> Subscribe | None:
    """A SUBSCRIBE arrived, before its filters are validated and checked by ACL.

    :return: a SUBSCRIBE to process instead (e.g. with filters rewritten or removed), or
        ``None`` to keep it.

    Kind: transform on ``packet``. Not on the per-message path.
    """


@hookspec
def on_subscribed(client: Client, packet: Subscribe, reason_codes: tuple[int, ...]) -> None:
    """A SUBSCRIBE was processed and its SUBACK sent; the retained messages it asks for are delivered after this hook.

    :param reason_codes: one per filter: the granted QoS, or an error reason code.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_select_subscribers(
    client: Client, packet: Publish, subscribers: list[SubscriberEntry]
) -> list[SubscriberEntry] | None:
    """Choose who receives a message, after the subscription trie matched its topic.

    :param client: the publishing client.
    :param subscribers: the matched ordinary subscriptions, one entry per matching
        subscription, No Local already applied. Shared-subscription groups are not in the
        list: one member of each group is chosen after this hook.
    :return: the list to deliver to instead, or ``None`` to keep it.

    Kind: transform on ``subscribers``. On the per-message path (msg).
    """


@hookspec
def on_unsubscribe(client: Client, packet: Unsubscribe) -> Unsubscribe | None:
    """An UNSUBSCRIBE arrived, before it is processed.

    :return: an UNSUBSCRIBE to process instead, or ``None`` to keep it.

    Kind: transform on ``packet``. Not on the per-message path.
    """


@hookspec
def on_unsubscribed(client: Client, packet: Unsubscribe) -> None:
    """An UNSUBSCRIBE was processed and its UNSUBACK sent.

    Kind: notify. Not on the per-message path.
    """


# -------------------------------------------------------------------------
# Message hooks
# -------------------------------------------------------------------------


@hookspec
def on_publish(client: Client, packet: Publish) -> Publish | None:
    """A PUBLISH from a client passed validation and ACL, before it is retained and routed.

    :return: a PUBLISH to route instead, or ``None`` to keep it. Raise
        :class:`hookmq.RejectPublish` ``(reason_code)`` to refuse it: a v5 QoS 1/2 publisher
        gets that reason code in PUBACK/PUBREC; the message is neither retained nor routed.

    Kind: transform on ``packet`` (a ``RejectPublish`` stops the chain and reaches the
    engine). On the per-message path (msg).
    """


@hookspec
def on_published(client: Client, packet: Publish) -> None:
    """A client's PUBLISH was routed to the subscribers.

    Kind: notify. On the per-message path (msg).
    """


@hookspec
def on_publish_dropped(client_id: str, packet: Publish, reason: str) -> None:
    """A message for a subscriber was dropped: its queue was full (``"queue full"``), its write buffer was full (QoS 0 to a slow client), it is larger than the client's Maximum Packet Size, or it expired while queued (``"expired"``).

    :param client_id: the subscriber that lost the message.
    :param reason: why, e.g. ``"queue_full"``.

    Kind: notify. Not on the per-message path (only when dropping).
    """


@hookspec
def on_retain_message(client: Client, packet: Publish, stored: bool, version: int) -> None:
    """A retained message was stored or cleared for a topic (by a publish, a will, or ``Broker.delete_retained``).

    :param client: the publishing client, or ``None`` (the broker itself, a will, the API).
    :param stored: ``True`` stored, ``False`` cleared (empty payload).
    :param version: the version of the topic's new state (see ``Broker.retained_versions``):
        newer than every version this broker has made or seen, so a cluster plugin can order
        it against changes made elsewhere.

    Kind: notify. Not on the per-message path (only for retained publishes).
    """


@hookspec
def on_qos_publish(client: Client, packet: Publish, resends: int) -> None:
    """A QoS 1/2 message was sent to a client and is inflight (also when an unacknowledged one is resent after a reconnect).

    :param resends: 0 for the first sending, then the number of resends.

    Kind: notify. On the per-message path (msg).
    """


@hookspec
def on_qos_complete(client: Client, packet_id: int) -> None:
    """A QoS 1/2 flow finished (PUBACK or PUBCOMP) and its inflight entry was removed.

    Kind: notify. On the per-message path (msg).
    """


@hookspec
def on_qos_dropped(client_id: str, packet: Publish, reason: str) -> None:
    """An inflight QoS 1/2 message was abandoned: its session ended (``"session ended"``), or it expired before it was ever sent (``"message expired"``).

    Kind: notify. Not on the per-message path.
    """


# -------------------------------------------------------------------------
# Will and expiry hooks
# -------------------------------------------------------------------------


@hookspec
def on_will(client: Client, will: Will) -> Will | None:
    """A client's will message is about to be published.

    :return: a will to publish instead, or ``None`` to keep it.

    Kind: transform on ``will``. Not on the per-message path.
    """


@hookspec
def on_will_sent(client_id: str, packet: Publish) -> None:
    """A will message was published (immediately or after its delay).

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_client_expired(client_id: str) -> None:
    """A disconnected client's session expired and was deleted.

    Kind: notify. Not on the per-message path.
    """


@hookspec
def on_retained_expired(topic: str) -> None:
    """A retained message expired (its message expiry interval ran out) and was deleted.

    Kind: notify. Not on the per-message path.
    """


# -------------------------------------------------------------------------
# Cluster hooks: interest, routing across brokers, session ownership
# -------------------------------------------------------------------------


@hookspec
def on_subscription_added(entry: SubscriberEntry, replaced: SubscriberEntry | None, restored: bool) -> None:
    """A session's subscription entered this broker's trie: its local interest grew (or changed).

    Fires for every subscription a session gains: granted by a SUBSCRIBE (before SUBACK is
    sent, so an implementation that awaits, say, the other nodes' acknowledgement of a route,
    delays SUBACK), restored from the store when the broker starts (after ``plugin_start``) or
    when a session is re-read from a shared store, and taken in with a session from another
    broker (``Broker.import_session``). Offline persistent sessions keep their subscriptions,
    so nothing fires when they disconnect. Routes added with ``Broker.add_route`` are not
    subscriptions and never fire it.

    :param entry: the subscription: ``client_id``, ``topic_filter`` as sent (``$share/<group>/``
        included), ``share_group`` (``None`` for an ordinary one), ``options``, ``identifier``.
    :param replaced: the same client's entry on the same filter that this one replaced
        (a repeated SUBSCRIBE, e.g. with another QoS), or ``None`` when the filter is new to
        the session: a route table counts filters only when it is ``None``.
    :param restored: ``True`` when the subscription came back from the store.

    Kind: notify (awaited in order with the change). Not on the per-message path.
    """


@hookspec
def on_subscription_removed(entry: SubscriberEntry) -> None:
    """A session's subscription left this broker's trie: its local interest shrank.

    Fires for an UNSUBSCRIBE that removed a filter (before UNSUBACK), for every subscription
    of a session that ends (clean start, expiry, a clean session's disconnect), of a session
    that leaves this broker (``Broker.session_moved``) and of a stale copy replaced by one
    re-read from a shared store.

    :param entry: the subscription that went (as in :func:`on_subscription_added`).

    Kind: notify (awaited in order with the change). Not on the per-message path.
    """


@hookspec
def on_forward(message: Message, destinations: dict[str, tuple[tuple[str, str], ...]]) -> Any:
    """A message matched routes of destinations outside this broker: send it there.

    Fires once per routed message whose single trie match reached at least one destination
    added with ``Broker.add_route`` (a publish, a will, ``Broker.publish``, a shared message
    redelivered when its member left); never for a message taken in with ``Broker.inject``
    and never for ``$SYS`` figures. Local subscribers were already served in the same pass.

    :param message: the message as published (``hookmq.Message``): ``topic``, ``payload``,
        ``qos`` and ``retain`` as the publisher sent them, the publisher's ``properties``,
        ``origin`` (the publisher's client id, for No Local; ``None`` for the broker),
        ``expiry_at`` and ``remaining_expiry(now)``; ``message.wire(5, qos, retain, (), now)``
        gives its MQTT 5 encoding from the same cache local subscribers' bytes come from.
        Treat it as read-only.
    :param destinations: each matched destination, once however many of its routes
        matched, with the share groups (``(group, filter)``) it was chosen to serve: the
        receiving broker passes them as ``shares`` to ``Broker.inject``. An empty tuple means
        its ordinary subscriptions only.
    :return: ``None``, or an awaitable (an ``asyncio.Future``) that completes when every
        destination has the message as safely as a local publish would keep it, and raises if
        it cannot. For a QoS 1/2 publish the publisher's PUBACK/PUBREC waits for it, in the
        client's existing queue of acknowledgements (a failure: v5 reason 0x80, v3 no
        acknowledgement, so the client resends); the read loop goes on meanwhile. Return a
        future rather than a coroutine: where no publisher waits (QoS 0, wills) it is dropped.

    Kind: collect, sync only (queue the message for sending; never block). On the per-message
    path (msg), for messages that match a destination only.
    """


@hookspec
def on_select_share_member(
    message: Message, share_group: str, topic_filter: str, members: list[SubscriberEntry]
) -> SubscriberEntry | None:
    """Choose which member of a shared subscription group takes a message.

    Fires for each share group a routed message matches, with every member that can take it:
    this broker's sessions and, for a message routed here (not one taken in with
    ``Broker.inject``), the destinations holding a route for the group (``hookmq.RouteEntry``
    entries, with ``destination``). Return one of ``members`` to choose it: a route means the
    message goes to that destination (which delivers it to one of its own members) and to no
    local member. Without an answer the members take turns, connected members first.

    :param share_group: the group name; ``topic_filter`` is the filter without ``$share/<group>/``.
    :return: the chosen entry (one of ``members``), or ``None`` to leave the choice to the turn.

    Kind: first, sync only. On the per-message path (msg), for shared subscriptions only.
    """


@hookspec
def on_session_claim(client: Client, connect: Connect) -> int | None:
    """A CONNECT is accepted (authenticated, will allowed) and about to attach its session: hold it or refuse it.

    Fires once per CONNECT, before any takeover on this broker and before CONNACK, and before
    the client id's attach lock is taken (so ``Broker.import_session``, which takes it, may be
    called from here or from any other task; claims of two connections with the same id may
    run at the same time). An async implementation holds the CONNECT as long as it needs: a
    cluster plugin claims the client id in its shared store here, asks the node that has the
    session to end it (``Broker.session_moved`` there) and takes its state in
    (``Broker.import_session``), so that CONNACK then carries the right session-present flag.

    :param client: the connecting client (``client_id`` is final: assigned if it was empty).
    :param connect: the CONNECT packet (``clean_start`` says whether the session is kept).
    :return: ``None`` to let the CONNECT proceed, or a reason code to refuse it with (v5
        CONNACK with that code, e.g. 0x88 Server unavailable; v3 the matching return code).

    Kind: first (the first reason code refuses; later implementations do not run). Not on the
    per-message path.
    """
