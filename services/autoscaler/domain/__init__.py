"""The autoscaler's decision domain: pure functions and frozen dataclasses, no I/O.

policy (what a group asks for), observe (what is seen), proportional (one metric's recommendation,
HPA's rules), decide (one evaluation), record (the decision record), state (windows rebuilt by
folding records), hpa and sim (a model of Kubernetes HPA and a simulator, for the benchmark).

How the service drives it, once a tick per group (1 s):

    errors = validate(policy)                     # [(field, problem)], before accepting a policy
    state = rebuild(policy, recent_records)       # on start: the last state.keep_s seconds of records
    d, state = step(policy, state, observation, now)
    log(as_record(d))                             # every decision, changed or not: the windows need them
    if d.changed: ask the registry for d.to       # status shows d.reason
    clamp(policy, n).count                        # for a manual scale request too
"""

from services.autoscaler.domain.decide import decide, step
from services.autoscaler.domain.observe import MetricSample, Observation, uniform
from services.autoscaler.domain.policy import (
    Clamped,
    DownBehaviour,
    MetricTarget,
    Policy,
    UpBehaviour,
    clamp,
    validate,
)
from services.autoscaler.domain.record import Decision, MetricValue, as_record, from_record
from services.autoscaler.domain.state import State, fold, rebuild, state_from_record, state_record

__all__ = [
    "Clamped",
    "Decision",
    "DownBehaviour",
    "MetricSample",
    "MetricTarget",
    "MetricValue",
    "Observation",
    "Policy",
    "State",
    "UpBehaviour",
    "as_record",
    "clamp",
    "decide",
    "fold",
    "from_record",
    "rebuild",
    "state_from_record",
    "state_record",
    "step",
    "uniform",
    "validate",
]
