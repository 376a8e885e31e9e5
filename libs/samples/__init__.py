"""Samples that are metrics, not events: what the schedulers and the tasks' publishers put on plain
NATS subjects, kept in memory by whoever reads them (the autoscaler, the deployer's analyses).

- :mod:`.usage`: cpu and memory fractions from ``bay.usage.<cluster>.<group>`` (``UsageWindow``)
- :mod:`.pushed`: custom metrics on ``bay.metric.<group>.<name>`` (``parse_payload``,
  ``parse_subject``, ``PushedMetrics``: the latest value per group and per task)

One decoding of each subject and payload for every reader: a payload one reader takes, all take.
"""
