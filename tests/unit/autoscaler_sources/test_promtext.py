"""The Prometheus text format parser: the format's rules and its edge cases."""

from __future__ import annotations

import math

import pytest

from services.autoscaler.sources.promtext import (
    ExpositionError,
    Selector,
    parse,
    parse_float,
    select,
    wanted_names,
)

EXAMPLE = """\
# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.5e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045

# A histogram, which has a pretty complex representation in the text format:
# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# Finally a summary, which has a complex representation, too:
# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"""


def test_the_formats_own_example() -> None:
    families = parse(EXAMPLE)
    requests = families["http_requests_total"]
    assert (requests.type, requests.help) == ("counter", "The total number of HTTP requests.")
    assert [(s.labels, s.value, s.timestamp_ms) for s in requests.samples] == [
        ({"method": "post", "code": "200"}, 1027.0, 1395066363000),
        ({"method": "post", "code": "400"}, 3.0, 1395066363000),
    ]
    (msdos,) = families["msdos_file_access_time_seconds"].samples
    assert msdos.labels == {"path": "C:\\DIR\\FILE.TXT", "error": 'Cannot find file:\n"FILE.TXT"'}
    assert msdos.value == 1.5e9
    (weird,) = families["something_weird"].samples
    assert (weird.value, weird.timestamp_ms) == (math.inf, -3982045)
    assert families["metric_without_timestamp_and_labels"].samples[0].value == 12.47
    histogram = families["http_request_duration_seconds"]
    assert histogram.type == "histogram"
    assert [s.name for s in histogram.samples] == [
        *["http_request_duration_seconds_bucket"] * 3,
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
    ]
    assert histogram.samples[2].labels == {"le": "+Inf"}
    summary = families["rpc_duration_seconds"]
    assert summary.type == "summary" and len(summary.samples) == 4
    assert (
        "rpc_duration_seconds_sum" not in families and "http_request_duration_seconds_bucket" not in families
    )


def test_select_sums_max_one_and_labels() -> None:
    families = parse(EXAMPLE)
    assert select(families, Selector("http_requests_total")) == 1030.0
    assert select(families, Selector("http_requests_total", {"code": "400"})) == 3.0
    assert select(families, Selector("http_requests_total", combine="max")) == 1027.0
    assert select(families, Selector("http_requests_total", combine="one")) is None
    assert select(families, Selector("http_requests_total", {"code": "500"})) is None
    assert select(families, Selector("absent_metric")) is None
    # suffixed samples are found within their family
    assert select(families, Selector("http_request_duration_seconds_count")) == 144320.0
    assert select(families, Selector("http_request_duration_seconds_bucket", {"le": "0.1"})) == 33444.0
    assert select(families, Selector("rpc_duration_seconds", {"quantile": "0.5"})) == 4773.0


def test_nan_is_missing_and_infinities_are_values() -> None:
    families = parse('a NaN\nb{x="1"} -Inf\nb{x="2"} 5\nc +Inf\nc{y=""} -Inf\n')
    assert select(families, Selector("a")) is None
    assert select(families, Selector("b")) == -math.inf
    assert select(families, Selector("c")) is None  # +Inf + -Inf: no figure


def test_blanks_tabs_crlf_trailing_comma_and_no_final_newline() -> None:
    text = '  \tgauge_x { a = "1" ,\tb="two words", }\t 7 \r\n# just a comment\n#\n\nlast 1'
    families = parse(text)
    (x,) = families["gauge_x"].samples
    assert (x.labels, x.value) == ({"a": "1", "b": "two words"}, 7.0)
    assert families["last"].samples[0].value == 1.0
    assert parse("e{} 1\n")["e"].samples[0].labels == {}


def test_help_escapes_and_comments_that_are_not_metadata() -> None:
    families = parse("# HELP m line one\\nline two \\\\ and \\x kept\n# help m not metadata\n# m 1\nm 2\n")
    assert families["m"].help == "line one\nline two \\ and \\x kept"
    assert [s.value for s in families["m"].samples] == [2.0]


def test_label_values_keep_braces_commas_and_unicode() -> None:
    (s,) = parse('m{a="x}y,z=\\"q\\"",b="żółw 🐢"} 1\n')["m"].samples
    assert s.labels == {"a": 'x}y,z="q"', "b": "żółw 🐢"}


@pytest.mark.parametrize(
    "token, value",
    [
        ("1", 1.0),
        ("-0.5", -0.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1.5E-3", 0.0015),
        ("+Inf", math.inf),
        ("-Inf", -math.inf),
        ("inf", math.inf),
        ("+3", 3.0),
    ],
)
def test_floats(token: str, value: float) -> None:
    assert parse_float(token) == value


@pytest.mark.parametrize("token", ["1_000", "0x10", "", "1e", "--1", "one", "1.2.3", "Infinite"])
def test_not_floats(token: str) -> None:
    assert parse_float(token) is None


def test_nan_float() -> None:
    assert math.isnan(parse_float("NaN") or 0.0)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("9metric 1\n", "bad metric name"),
        ("m\n", "a value"),
        ("m 1 2 3\n", "a value"),
        ("m one\n", "bad value"),
        ("m 1 1.5\n", "bad timestamp"),
        ("m 1 99999999999999999999\n", "bad timestamp"),
        ('m{a="1"}1\n', "no blank"),
        ('m{a="1" 1\n', "expected , or }"),
        ("m{a=1} 1\n", 'expected ="'),
        ('m{a="1} 1\n', "not closed"),
        ('m{a="\\t"} 1\n', "bad escape"),
        ('m{9a="1"} 1\n', "bad label name"),
        ('m{a="1",a="2"} 1\n', "given twice"),
        ("# TYPE m countr\n", "unknown type"),
        ("# TYPE m counter\n# TYPE m gauge\n", "second TYPE"),
        ("# HELP m a\n# HELP m b\n", "second HELP"),
        ("m 1\n# TYPE m gauge\n", "after its samples"),
        ("# TYPE 1m gauge\n", "bad metric name"),
        ('h_bucket{le="1"} 1\n# TYPE h histogram\n', "after its samples"),
        ('m{a="1",b="2"} 1\nm{b="2",a="1"} 3\n', "given twice"),
        ("ok 2\n", "given twice"),
    ],
)
def test_errors_name_the_line(text: str, reason: str) -> None:
    with pytest.raises(ExpositionError) as err:
        parse("ok 1\n" + text)
    assert err.value.line == 1 + text.count("\n")  # the last line of each text is the bad one
    assert reason in err.value.reason


def test_a_bad_selector_is_refused() -> None:
    with pytest.raises(ValueError):
        Selector("bad name")
    with pytest.raises(ValueError):
        Selector("m", combine="avg")


def test_only_the_wanted_families_are_read() -> None:
    text = EXAMPLE + "other_metric{broken 1\n"
    with pytest.raises(ExpositionError):
        parse(text)
    for selector, value in [
        (Selector("http_requests_total"), 1030.0),
        (Selector("http_request_duration_seconds_bucket", {"le": "+Inf"}), 144320.0),
        (Selector("rpc_duration_seconds_count"), 2693.0),
        (Selector("rpc_duration_seconds", {"quantile": "0.01"}), 3102.0),
    ]:
        families = parse(text, only=wanted_names(selector))
        assert select(families, selector) == value
        assert "metric_without_timestamp_and_labels" not in families
    assert set(parse(text, only={"http_request_duration_seconds"})) == {"http_request_duration_seconds"}
    with pytest.raises(ExpositionError):  # a line that is no metric at all is still refused
        parse("<html>\n", only={"m"})
