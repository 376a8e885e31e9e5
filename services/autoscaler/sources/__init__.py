"""The autoscaler's metric sources: I/O adapters that turn what NATS, JetStream and the tasks'
own endpoints say into per-group and per-task figures. Missing data is never zero: a task without
a figure is absent from a result (or named with the reason), a backlog that cannot be read is
``None`` with an error. The sample stores it shares with the deployer are in libs/samples
(``UsageWindow`` for ``bay.usage.<cluster>.<group>``, ``PushedMetrics`` for
``bay.metric.<group>.<name>``).

- :mod:`.promtext` and :mod:`.prometheus`: the Prometheus text format and a scraper of tasks
- :mod:`.backlog`: a JetStream consumer's backlog, and a wake-up at its first message from zero

A group's custom metric publisher is given its NATS rights by ``libs.natsperms.metric_publisher``
and its credential by ``bay nats metrics-credential GROUP`` (``libs/natsusers.py``).
"""
