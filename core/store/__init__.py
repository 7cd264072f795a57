"""hookmq.store: where persistent broker state lives (see docs/storage.md).

- :mod:`hookmq.store.base` — the async :class:`~hookmq.store.base.Store` interface.
- :mod:`hookmq.store.records` — the records it stores (sessions, subscriptions, inflight, messages).
- :mod:`hookmq.store.settings` — the ``[storage]`` table.
- :mod:`hookmq.store.memory` — the in-memory default backend (plugin :mod:`hookmq.store.memory_plugin`).
- :mod:`hookmq.store.batching` — group commit, shared by the persistent backends.
- :mod:`hookmq.store.serialize` — the compact binary record encoding.
- :mod:`hookmq.store.migrate` and :mod:`hookmq.store.cli` — ``hookmq store migrate``.
"""
