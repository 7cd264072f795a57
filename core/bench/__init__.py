"""The hookmq benchmark harness: a multi-process MQTT load generator and a broker comparison.

``hookmq bench`` (or ``python -m hookmq.bench``) drives any broker reachable at an
``mqtt://host:port`` URL; ``hookmq bench compare`` starts hookmq, mosquitto and amqtt side by
side and runs the same workloads against each. See ``docs/benchmarks.md``.
"""
