"""The overview with 1,000 groups: time to first render and to live, measured in the browser
(:mod:`tests.browser.overview_load`); printed under "web UI figures".

The groups are made through the REST API before the page loads: 1,000 groups of ``instances: 0``
(a spec each, no task: the page draws a bar per group whatever runs), plus the group ``probe``
that is scaled once the page is live, and the other tests' groups.
"""

from __future__ import annotations

import httpx
import pytest

from tests.browser.chrome import Page
from tests.browser.overview_load import make_groups, measure_overview

GROUPS = 1000


def test_overview_with_1000_groups(
    operator_page: Page, api: httpx.Client, record_property: pytest.RecordProperty
) -> None:
    total = make_groups(api, GROUPS)
    assert total >= GROUPS + 1
    times = measure_overview(operator_page)
    assert times.bars == total
    record_property("figure", str(times))
    print(times)
    operator_page.screenshot("overview-1000")
