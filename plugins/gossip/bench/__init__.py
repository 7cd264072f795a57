"""``hookmq bench gossip``: failure detection measured, in simulation and across real processes.

- :mod:`.processes` starts hookmq nodes (and, for comparison, HashiCorp memberlist's ``mlnode``)
  as real processes on loopback and reads what they report, with their own timestamps;
- :mod:`.trials` kills one node of a fresh cluster per trial (``kill -9``, or a graceful stop)
  and times how long each survivor takes to report it;
- :mod:`.load` does that while one node is saturated by the MQTT bench's pairs workload and
  another shares its CPU with a hog, and counts every live node suspected or declared failed;
- :mod:`.report` turns the results into the Markdown tables of docs/cluster.md, and
  :mod:`.cli` is the command.

The slow tests of issue 13 (tests 3 and 5) run the same code and assert the protocol bounds.
"""
