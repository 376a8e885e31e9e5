"""The Prometheus text exposition format (version 0.0.4), parsed: pure, no I/O.

What the format says (prometheus.io, "Exposition formats", text format details), and what this
parser does with it:

- Lines end with ``\\n`` (a ``\\r`` before it is taken off too); empty lines are ignored, and so
  are leading and trailing blanks; tokens are separated by any number of blanks or tabs.
- A line whose first non-blank character is ``#`` is a comment, unless its next token is ``HELP``
  (a metric name, then the docstring, in which ``\\\\`` and ``\\n`` are escapes) or ``TYPE`` (a
  metric name and one of counter, gauge, histogram, summary, untyped). At most one of each per
  metric name, and a TYPE before the metric's first sample.
- A sample: ``name[{label="value",...}] value [timestamp]``. Names match
  ``[a-zA-Z_:][a-zA-Z0-9_:]*``, label names ``[a-zA-Z_][a-zA-Z0-9_]*``; label values escape
  ``\\\\``, ``\\"`` and ``\\n``; a trailing comma in the braces is allowed. The value is a float as
  Go's ParseFloat reads it (``NaN``, ``+Inf``, ``-Inf`` included); the timestamp is int64
  milliseconds since the epoch.
- A series (name and labels) appears once: a second one would be counted twice in a sum.
- A histogram ``x`` has samples ``x_bucket{le=...}``, ``x_sum`` and ``x_count``; a summary ``x``
  has ``x{quantile=...}``, ``x_sum`` and ``x_count``: they are put in the family ``x``.

A text that breaks these rules raises :class:`ExpositionError` naming the line, and nothing of it
is used, as Prometheus fails a whole scrape: a half-read exposition could yield a wrong sum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_FLOAT = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)\Z", re.IGNORECASE)
_INT = re.compile(r"[+-]?\d+\Z")
_BLANKS = " \t"
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
_ALL_SUFFIXES = ("_bucket", "_sum", "_count")


class ExpositionError(ValueError):
    """The text is not in the Prometheus text format; ``line`` is 1-based."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass(frozen=True)
class Sample:
    name: str  # as written, suffix and all (``x_bucket``)
    labels: Mapping[str, str]
    value: float
    timestamp_ms: int | None = None


@dataclass
class Family:
    name: str
    type: str = "untyped"
    help: str = ""
    samples: list[Sample] = field(default_factory=list)


def parse(text: str, only: Collection[str] | None = None) -> dict[str, Family]:
    """Every metric family of ``text``, by name (the order of first appearance).

    ``only``: the families named (and the suffixed samples of histograms and summaries named), the
    other lines skipped unread, for speed (a scrape wants one metric out of hundreds; a full read of
    1 MB takes half a second) and so that another metric's broken line does not cost this one."""
    if only is not None:
        only = frozenset(only)
    families: dict[str, Family] = {}
    helped: set[str] = set()
    typed: set[str] = set()
    series: set[tuple[str, frozenset[tuple[str, str]]]] = set()
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip(_BLANKS)
        if not line:
            continue
        if only is not None and not _wanted(line, only):
            continue
        if line.startswith("#"):
            _metadata(line, number, families, helped, typed)
            continue
        sample = _sample(line, number)
        key = (sample.name, frozenset(sample.labels.items()))
        if key in series:  # it would be counted twice in a sum
            raise ExpositionError(number, f"{sample.name}{sample.labels or ''} given twice")
        series.add(key)
        family = families.get(_family_name(sample.name, families))
        if family is None:
            family = families[sample.name] = Family(sample.name)
        family.samples.append(sample)
    return families


def _wanted(line: str, only: frozenset[str]) -> bool:
    if line.startswith("#"):
        keyword, _, rest = _split_token(line[1:].lstrip(_BLANKS))
        return keyword not in ("HELP", "TYPE") or _split_token(rest)[0] in only
    match = _NAME.match(line)
    if match is None:
        return True  # read, to be refused
    name = match.group()
    return name in only or any(name.removesuffix(s) in only for s in _ALL_SUFFIXES if name.endswith(s))


def _metadata(line: str, number: int, families: dict[str, Family], helped: set[str], typed: set[str]) -> None:
    tokens = line[1:].lstrip(_BLANKS)
    keyword, _, rest = _split_token(tokens)
    if keyword not in ("HELP", "TYPE"):
        return  # a plain comment
    name, _, rest = _split_token(rest)
    if not _NAME.fullmatch(name):
        raise ExpositionError(number, f"# {keyword}: bad metric name {name!r}")
    family = families.setdefault(name, Family(name))
    if keyword == "HELP":
        if name in helped:
            raise ExpositionError(number, f"a second HELP for {name}")
        helped.add(name)
        family.help = _unescape(rest)
        return
    kind = rest.strip(_BLANKS)
    if kind not in TYPES:
        raise ExpositionError(number, f"# TYPE {name}: unknown type {kind!r}")
    if name in typed:
        raise ExpositionError(number, f"a second TYPE for {name}")
    suffixed = (families.get(name + suffix) for suffix in _SUFFIXES.get(kind, ()))
    if family.samples or any(f is not None and f.samples for f in suffixed):
        raise ExpositionError(number, f"TYPE for {name} after its samples")
    typed.add(name)
    family.type = kind


def _split_token(text: str) -> tuple[str, str, str]:
    """The first blank-separated token and the rest after the blanks that follow it."""
    for i, ch in enumerate(text):
        if ch in _BLANKS:
            return text[:i], ch, text[i:].lstrip(_BLANKS)
    return text, "", ""


def _family_name(sample_name: str, families: Mapping[str, Family]) -> str:
    """``x_bucket`` belongs to the histogram ``x``, ``x_sum`` to a histogram or summary ``x``."""
    if sample_name in families:
        return sample_name
    for kind, suffixes in _SUFFIXES.items():
        for suffix in suffixes:
            base = sample_name.removesuffix(suffix)
            if base != sample_name and base in families and families[base].type == kind:
                return base
    return sample_name


def _sample(line: str, number: int) -> Sample:
    match = _NAME.match(line)
    if match is None:
        raise ExpositionError(number, f"bad metric name at {line[:40]!r}")
    name = match.group()
    pos = match.end()
    labels: dict[str, str] = {}
    after = _skip_blanks(line, pos)
    if line[after : after + 1] == "{":
        pos = _labels(line, after + 1, number, labels)
    if line[pos : pos + 1] not in (*_BLANKS, ""):
        raise ExpositionError(number, f"no blank before the value of {name}")
    tokens = line[pos:].split()
    if not 1 <= len(tokens) <= 2:
        raise ExpositionError(number, f"{name}: a value and at most a timestamp, got {len(tokens)} tokens")
    value = parse_float(tokens[0])
    if value is None:
        raise ExpositionError(number, f"{name}: bad value {tokens[0]!r}")
    timestamp = None
    if len(tokens) == 2:
        if not _INT.match(tokens[1]) or not -(2**63) <= int(tokens[1]) < 2**63:
            raise ExpositionError(number, f"{name}: bad timestamp {tokens[1]!r}")
        timestamp = int(tokens[1])
    return Sample(name, labels, value, timestamp)


def _labels(line: str, pos: int, number: int, labels: dict[str, str]) -> int:
    """Read ``name="value",...}`` from ``pos`` into ``labels``; the position after the ``}``."""
    while True:
        pos = _skip_blanks(line, pos)
        if pos < len(line) and line[pos] == "}":
            return pos + 1
        match = _LABEL.match(line, pos)
        if match is None:
            raise ExpositionError(number, f"bad label name at column {pos + 1}")
        label = match.group()
        pos = _skip_blanks(line, match.end())
        if line[pos : pos + 1] != "=":
            raise ExpositionError(number, f'label {label}: expected ="..."')
        pos = _skip_blanks(line, pos + 1)
        if line[pos : pos + 1] != '"':
            raise ExpositionError(number, f'label {label}: expected ="..."')
        pos += 1
        value, pos = _quoted(line, pos, number)
        if label in labels:
            raise ExpositionError(number, f"label {label} given twice")
        labels[label] = value
        pos = _skip_blanks(line, pos)
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos >= len(line) or line[pos] != "}":
            raise ExpositionError(number, f"expected , or }} after label {label}")


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in _BLANKS:
        pos += 1
    return pos


def _quoted(line: str, pos: int, number: int) -> tuple[str, int]:
    """A label value from just after its opening quote: the text and the position after the close."""
    out: list[str] = []
    while pos < len(line):
        ch = line[pos]
        if ch == '"':
            return "".join(out), pos + 1
        if ch == "\\":
            nxt = line[pos + 1 : pos + 2]
            if nxt == "n":
                out.append("\n")
            elif nxt in ('"', "\\"):
                out.append(nxt)
            else:
                raise ExpositionError(number, f"bad escape \\{nxt} in a label value")
            pos += 2
            continue
        out.append(ch)
        pos += 1
    raise ExpositionError(number, "label value not closed")


def _unescape(text: str) -> str:
    r"""A docstring: ``\\`` and ``\n`` are escapes; any other backslash stays as written (Prometheus'
    own parser is as lenient there)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and text[i + 1 : i + 2] in ("n", "\\"):
            nxt = text[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_float(token: str) -> float | None:
    """A float as Go's ParseFloat reads the format's values (``NaN``, ``+Inf``, ``-Inf``, exponents),
    or None. Python's own ``float`` would take ``1_000`` too, which Prometheus does not."""
    if not _FLOAT.match(token):
        return None
    return float(token)


@dataclass(frozen=True)
class Selector:
    """Which series of an exposition make a task's value: samples named ``name`` whose labels
    include every pair of ``labels``; ``combine`` says what several of them make (``sum`` or
    ``max``; ``one``: exactly one must match, else the value is missing)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    combine: str = "sum"

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"bad metric name {self.name!r}")
        if self.combine not in ("sum", "max", "one"):
            raise ValueError(f"combine: sum, max or one, not {self.combine!r}")


def wanted_names(selector: Selector) -> frozenset[str]:
    """What :func:`parse` must read (``only``) for :func:`select` to find ``selector``'s series:
    its name, and the histogram or summary it may be a suffixed sample of."""
    return frozenset({selector.name, *(selector.name.removesuffix(s) for s in _ALL_SUFFIXES)})


def select(families: Mapping[str, Family], selector: Selector) -> float | None:
    """The value ``selector`` picks, or None: no series matches, several for ``one``, or any of them
    is NaN (a NaN says the application has no figure, which is missing, not a number)."""
    values = [
        s.value
        for s in _samples_named(families, selector.name)
        if all(s.labels.get(k) == v for k, v in selector.labels.items())
    ]
    if not values or any(math.isnan(v) for v in values):
        return None
    if selector.combine == "one":
        return values[0] if len(values) == 1 else None
    combined = max(values) if selector.combine == "max" else sum(values)
    return None if math.isnan(combined) else combined  # +Inf and -Inf summed


def _samples_named(families: Mapping[str, Family], name: str) -> Iterable[Sample]:
    family = families.get(_family_name(name, families))
    if family is None:
        return ()
    return (s for s in family.samples if s.name == name)
