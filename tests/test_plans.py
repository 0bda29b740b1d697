"""Scenario tests for proofs per root queryset (plans.py): findings that share a root get one
combined, proven fix in ``Report.fixes``."""

from __future__ import annotations

import pytest

from ddt_prefetch_panel import detect

pytestmark = pytest.mark.django_db


def _n_plus_ones(report) -> list:
    return [f for f in report.findings if f.kind == "n_plus_one"]


# --------------------------------------------------------------------------- item 3: hops that look alike


def test_two_paths_to_one_model_on_one_line_get_one_fix_covering_both():
    from tests.proofs.models import Circuit, Site, Termination

    def end(name: str) -> Termination:
        return Termination.objects.create(site=Site.objects.create(name=name))

    for i in range(4):
        Circuit.objects.create(cid=f"c{i}", term_a=end(f"a{i}"), term_z=end(f"z{i}"))
    with detect() as report:
        ends = [f"{c.term_a.site.name}-{c.term_z.site.name}" for c in Circuit.objects.order_by("pk")]
    assert ends[0] == "a0-z0"
    lookups = sorted(f.lookup for f in _n_plus_ones(report))
    assert lookups == ["term_a__site", "term_z__site"]
    [fix] = report.fixes
    assert fix["fix"] == '.select_related("term_a__site", "term_z__site")'
    assert fix["proof"]["status"] == "verified"
