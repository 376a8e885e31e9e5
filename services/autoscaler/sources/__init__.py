"""The autoscaler's metric sources: I/O adapters that turn what NATS, JetStream and the tasks'
own endpoints say into per-group and per-task figures. Missing data is never zero: a task without
a figure is absent from a result (or named with the reason), a backlog that cannot be read is
``None`` with an error.

- :mod:`.usage`: cpu and memory fractions from ``bay.usage.<cluster>.<group>`` (``UsageWindow``)
- :mod:`.pushed`: custom metrics pushed on ``bay.metric.<group>.<name>`` (``PushedMetrics``)
- :mod:`.promtext` and :mod:`.prometheus`: the Prometheus text format and a scraper of tasks
- :mod:`.backlog`: a JetStream consumer's backlog, and a wake-up at its first message from zero
- :mod:`.publisher`: the NATS rights of a group's custom metric publisher
"""
