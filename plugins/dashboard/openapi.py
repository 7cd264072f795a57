"""The OpenAPI 3.1 description of the dashboard's HTTP API, served at /api/openapi.json."""

from __future__ import annotations

from typing import Any

from hookmq import __version__

_PAGING = [
    {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0}},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}},
    {"name": "q", "in": "query", "description": "Case-insensitive substring filter.", "schema": {"type": "string"}},
]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _page_of(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["total", "offset", "limit", "items"],
        "properties": {
            "total": {"type": "integer", "description": "Items matching the filter, on every page."},
            "offset": {"type": "integer"},
            "limit": {"type": "integer"},
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        },
    }


_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "detail"],
        "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    },
    "Info": {
        "type": "object", "description": "broker.info(): the $SYS figures (numbers, version and dates as text).",
        "additionalProperties": {"type": ["integer", "number", "string"]},
    },
    "Client": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string"}, "username": {"type": ["string", "null"]},
            "remote_address": {"type": ["string", "null"]}, "listener": {"type": ["string", "null"]},
            "protocol_level": {"type": ["integer", "null"], "enum": [3, 4, 5, None]},
            "protocol": {"type": ["string", "null"], "enum": ["3.1", "3.1.1", "5.0", None]},
            "connected": {"type": "boolean"}, "connected_at": {"type": ["number", "string", "null"]},
            "keep_alive": {"type": ["integer", "null"]}, "clean_start": {"type": ["boolean", "null"]},
            "subscriptions": {"type": "integer", "description": "How many (the detail view lists them)."},
            "inflight": {"type": "integer"}, "queued": {"type": "integer"},
        },
    },
    "ClientDetail": {
        "allOf": [{"$ref": "#/components/schemas/Client"}, {
            "type": "object",
            "properties": {
                "subscriptions": {"type": "array", "items": {"$ref": "#/components/schemas/Subscription"},
                                  "description": "One page (?offset=&limit=, at most 1000) of the client's subscriptions."},
                "subscriptions_total": {"type": "integer"}, "subscriptions_offset": {"type": "integer"},
                "subscriptions_limit": {"type": "integer"},
            },
        }],
    },
    "Subscription": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string"}, "topic_filter": {"type": "string"},
            "share_group": {"type": ["string", "null"]}, "identifier": {"type": ["integer", "null"]},
            "qos": {"type": "integer", "enum": [0, 1, 2]}, "no_local": {"type": "boolean"},
            "retain_as_published": {"type": "boolean"}, "retain_handling": {"type": "integer", "enum": [0, 1, 2]},
        },
    },
    "Retained": {
        "type": "object",
        "properties": {
            "topic": {"type": "string"}, "qos": {"type": "integer"},
            "payload": {"type": "string"}, "payload_encoding": {"type": "string", "enum": ["utf-8", "base64"]},
            "size": {"type": "integer", "description": "Payload length in bytes."},
        },
    },
    "PublishRequest": {
        "type": "object", "required": ["topic"], "additionalProperties": False,
        "properties": {
            "topic": {"type": "string", "description": "A topic name (no wildcards, not starting with '$')."},
            "payload": {"type": "string", "default": ""},
            "payload_encoding": {"type": "string", "enum": ["utf-8", "base64"], "default": "utf-8"},
            "qos": {"type": "integer", "enum": [0, 1, 2], "default": 0},
            "retain": {"type": "boolean", "default": False},
        },
    },
    "Sample": {
        "type": "object",
        "properties": {
            "t": {"type": "number", "description": "Unix time of the sample."},
            "figures": {"$ref": "#/components/schemas/Info"},
            "rates": {"type": "object", "additionalProperties": {"type": "number"},
                      "description": "<counter>_per_second since the previous sample."},
        },
    },
    "History": {
        "type": "object",
        "properties": {
            "type": {"const": "history"}, "interval": {"type": "number"}, "capacity": {"type": "integer"},
            "now": {"type": "number"}, "samples": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}},
        },
    },
}

_NUMBER_OR_NULL = {"type": ["number", "null"]}
_SCHEMAS["NodeFigures"] = {
    "type": "object", "description": "A node's figures, exchanged over the data links every second.",
    "properties": {
        "at": {"type": "number", "description": "Unix time they were taken (this node) or received (a peer's)."},
        "fresh": {"type": "boolean", "description": "Recent enough (3 intervals) to be summed."},
        "clients": {"type": "integer"}, "subscriptions": {"type": "integer"},
        "messages_received": {"type": "integer"}, "messages_sent": {"type": "integer"},
        "messages_in_per_second": {"type": "number"}, "messages_out_per_second": {"type": "number"},
    },
}
_SCHEMAS["Link"] = {
    "type": "object", "description": "The data link to a peer.",
    "properties": {
        "up": {"type": "boolean"}, "queue_frames": {"type": "integer"}, "queue_bytes": {"type": "integer"},
        "frames_sent": {"type": "integer"}, "frames_received": {"type": "integer"},
        "bytes_sent": {"type": "integer"}, "bytes_received": {"type": "integer"},
        "connects": {"type": "integer"}, "disconnects": {"type": "integer"},
        "unreliable_dropped": {"type": "integer"}, "endpoint": {"type": ["string", "null"]},
        "rtt_seconds": _NUMBER_OR_NULL,
    },
}
_SCHEMAS["Member"] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"}, "state": {"type": "string", "enum": ["alive", "suspect", "failed", "left"]},
        "incarnation": {"type": "integer"}, "address": {"type": "string", "description": "host:port of its gossip."},
        "joined_at": {**_NUMBER_OR_NULL, "description": "Unix time this node saw it join (null: before this node)."},
        "state_since": {"type": "number"}, "local": {"type": "boolean", "description": "This node."},
        "hookmq": {"type": "boolean", "description": "A hookmq node (false: another memberlist node)."},
        "link": {"oneOf": [{"$ref": "#/components/schemas/Link"}, {"type": "null"}]},
        "routes": {"type": ["integer", "null"]}, "messages_forwarded": {"type": ["integer", "null"]},
        "messages_received": {"type": ["integer", "null"]},
        "figures": {"oneOf": [{"$ref": "#/components/schemas/NodeFigures"}, {"type": "null"}]},
    },
}
_SCHEMAS["Cluster"] = {
    "type": "object", "required": ["enabled"],
    "properties": {
        "enabled": {"type": "boolean"}, "detail": {"type": "string"}, "node": {"type": "string"},
        "joined": {"type": "boolean"}, "nodes": {"type": "array", "items": {"type": "string"}},
        "members": {"type": "array", "items": {"$ref": "#/components/schemas/Member"}},
        "members_by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
        "totals": {"type": ["object", "null"], "description": "Summed over live nodes with fresh figures.",
                   "properties": {"nodes_reporting": {"type": "integer"}, "clients": {"type": "integer"},
                                  "subscriptions": {"type": "integer"},
                                  "messages_in_per_second": {"type": "number"},
                                  "messages_out_per_second": {"type": "number"}}},
        "routes": {"type": "object", "properties": {"count": {"type": "integer"}, "local_filters": {"type": "integer"}}},
        "membership": {"type": "object", "additionalProperties": {"type": "integer"},
                       "description": "probes, probes_indirect, probes_failed, suspicions, refutations, ..."},
        "sessions": {"type": "object", "additionalProperties": {"type": "integer"},
                     "description": "takeovers and adoptions, when the sessions-across-nodes part counts them."},
        "links": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}

_UNAUTHORIZED = {"401": _error("No valid token, session cookie or allowed loopback access.")}
_FORBIDDEN = {"403": _error("Cross-origin request, or cookie/loopback mutation without X-CSRF-Token.")}


def _paths() -> dict[str, Any]:
    ok = {"200": _json({"type": "object"}, "OK")}
    return {
        "/info": {"get": {"summary": "broker.info(), read now", "responses": {
            "200": _json({"$ref": "#/components/schemas/Info"}, "The $SYS figures."), **_UNAUTHORIZED}}},
        "/healthz": {"get": {"summary": "Liveness: the dashboard answers", "security": [], "responses": ok}},
        "/readyz": {"get": {"summary": "Readiness: the listeners accept clients, the node has joined its cluster "
                                       "(or has no members to join) and the store answers a read", "security": [],
                            "responses": {**ok, "503": _json({"type": "object", "properties": {
                                "status": {"const": "not ready"}, "reason": {"type": "string"}}},
                                "Starting, stopping, not joined yet, or the store does not answer.")}}},
        "/metrics": {"get": {"summary": "The sampled figures in the Prometheus text format", "responses": {
            "200": {"description": "text/plain; version=0.0.4"}, **_UNAUTHORIZED}}},
        "/api/session": {"get": {"summary": "How the request is authenticated, and its CSRF token",
                                 "responses": {**ok, **_UNAUTHORIZED}}},
        "/api/history": {"get": {
            "summary": "The sampled figures kept in the ring buffer, oldest first",
            "parameters": [{"name": "since", "in": "query", "schema": {"type": "number"}}],
            "responses": {"200": _json({"$ref": "#/components/schemas/History"}, "History."), **_UNAUTHORIZED}}},
        "/api/live": {"get": {
            "summary": "WebSocket: a History frame, then one {type: sample, …Sample} frame per sample",
            "responses": {"101": {"description": "Switching protocols"}, **_UNAUTHORIZED, **_FORBIDDEN}}},
        "/api/clients": {"get": {
            "summary": "Clients, sorted by client id, paged and filtered",
            "parameters": [*_PAGING, {"name": "protocol", "in": "query",
                                      "schema": {"type": "string", "enum": ["3.1", "3.1.1", "5.0", "3", "4", "5"]}}],
            "responses": {"200": _json(_page_of("Client"), "One page."), "400": _error("Bad query."),
                          **_UNAUTHORIZED}}},
        "/api/client": {
            "parameters": [{"name": "client_id", "in": "query", "required": True, "schema": {"type": "string"},
                            "description": "Any client id, '.' and '..' included (the form the page uses)."},
                           *_PAGING],
            "get": {"summary": "One client with a page of its subscriptions", "responses": {
                "200": _json({"$ref": "#/components/schemas/ClientDetail"}, "The client."),
                "404": _error("Unknown client."), **_UNAUTHORIZED}},
            "delete": {"summary": "Disconnect the client (reason code 0x98)", "responses": {
                **ok, "404": _error("Not connected."), **_UNAUTHORIZED, **_FORBIDDEN}},
        },
        "/api/clients/{client_id}": {
            "parameters": [{"name": "client_id", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "A client id without '.' or '..' levels (400 bad_path): use /api/client?client_id= for those."},
                           *_PAGING],
            "get": {"summary": "One client with a page of its subscriptions", "responses": {
                "200": _json({"$ref": "#/components/schemas/ClientDetail"}, "The client."),
                "400": _error("A '.' or '..' level."), "404": _error("Unknown client."), **_UNAUTHORIZED}},
            "delete": {"summary": "Disconnect the client (reason code 0x98)", "responses": {
                **ok, "400": _error("A '.' or '..' level."), "404": _error("Not connected."), **_UNAUTHORIZED,
                **_FORBIDDEN}},
        },
        "/api/subscriptions": {"get": {
            "summary": "Subscriptions, session by session (not sorted), paged and filtered", "parameters": _PAGING,
            "responses": {"200": _json(_page_of("Subscription"), "One page."), **_UNAUTHORIZED}}},
        "/api/retained": {"get": {
            "summary": "Retained messages, oldest first (not sorted), paged and filtered",
            "parameters": [*_PAGING, {"name": "system", "in": "query", "description": "Include $-topics.",
                                      "schema": {"type": "boolean", "default": False}}],
            "responses": {"200": _json(_page_of("Retained"), "One page."), **_UNAUTHORIZED}},
            "delete": {"summary": "Clear the retained message of ?topic= (any topic, '..' levels included)",
                       "parameters": [{"name": "topic", "in": "query", "required": True, "schema": {"type": "string"}}],
                       "responses": {**ok, "404": _error("No retained message."), **_UNAUTHORIZED, **_FORBIDDEN}}},
        "/api/retained/{topic}": {
            "parameters": [{"name": "topic", "in": "path", "required": True, "schema": {"type": "string"},
                            "description": "The topic; may contain '/' (percent-encode '#', '?', '%'), not '.' or "
                                           "'..' levels (400 bad_path: use DELETE /api/retained?topic=)."}],
            "delete": {"summary": "Clear the retained message of a topic", "responses": {
                **ok, "404": _error("No retained message."), **_UNAUTHORIZED, **_FORBIDDEN}},
        },
        "/api/publish": {"post": {
            "summary": "Publish a message as the broker",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/PublishRequest"}}}},
            "responses": {"200": _json({"type": "object", "properties": {
                "topic": {"type": "string"}, "delivered": {"type": "integer"}}}, "Routed."),
                "400": _error("Bad body or topic."), "415": _error("Not JSON."), **_UNAUTHORIZED, **_FORBIDDEN}}},
        "/api/cluster": {"get": {
            "summary": "The cluster as this node sees it: members, their links, routes and figures, and totals",
            "description": "Outside cluster mode: {enabled: false, detail: 'clustering not enabled'}.",
            "responses": {"200": _json({"$ref": "#/components/schemas/Cluster"}, "The cluster."), **_UNAUTHORIZED}}},
        "/api/cluster/clients": {"get": {
            "summary": "The connected clients of every live node, each with its node (other nodes asked over the links)",
            "parameters": [_PAGING[1], _PAGING[2]],
            "responses": {"200": _json({"type": "object", "properties": {
                "enabled": {"type": "boolean"}, "total": {"type": "integer"}, "limit": {"type": "integer"},
                "items": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/Client"}, {
                    "type": "object", "properties": {"node": {"type": "string"}}}]}},
                "nodes": {"type": "object", "description": "Per node: {total} or {error} when it could not answer.",
                          "additionalProperties": {"type": "object"}}}}, "The clients."),
                "400": _error("Bad query."), **_UNAUTHORIZED}}},
        "/api/cluster/client": {"delete": {
            "summary": "Disconnect a client on any node of the cluster (reason code 0x98)",
            "parameters": [{"name": "node", "in": "query", "required": True, "schema": {"type": "string"}},
                           {"name": "client_id", "in": "query", "required": True, "schema": {"type": "string"}}],
            "responses": {**ok, "400": _error("Node or client missing."), "404": _error("Not connected there."),
                          "502": _error("The node is not a live member or did not answer."), **_UNAUTHORIZED,
                          **_FORBIDDEN}}},
    }


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document, built fresh (it is small and rarely fetched)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "hookmq dashboard API", "version": __version__,
                 "description": "See docs/dashboard.md. Mutations with a cookie or loopback access need X-CSRF-Token."},
        "security": [{"bearer": []}, {"cookie": []}],
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "hookmq_dashboard"},
            },
            "schemas": _SCHEMAS,
        },
        "paths": _paths(),
    }
