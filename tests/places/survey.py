"""Today's "where to act" answers on every page of tests/places/ (issue 20's baseline).

    cd /work/main && DJANGO_SETTINGS_MODULE=tests.settings .venv/bin/python tests/places/survey.py

Creates a throwaway test database, seeds it at n=3 and n=6, requests every page with the test
client inside ``detect()``, checks that each page's query count grows with n (each scenario
really is an N+1), and prints every finding of the n=6 run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "demo")]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

from tests.frameworks.fakelib import ensure_installed  # noqa: E402

ensure_installed()  # tests/places/urls.py wires a view of this library

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

from ddt_prefetch_panel import detect  # noqa: E402
from tests.places.models import Thread  # noqa: E402
from tests.places.seed import seed  # noqa: E402

PAGES = [
    "/places/threads/",
    "/places/threads/by-title/",
    "/places/threads/{thread}/",
    "/places/threads/posts/",
    "/places/threads/results/",
    "/places/threads/search/",
    "/places/threads/table/",
    "/places/posts/recent/",
    "/places/posts/published/",
    "/places/posts/titles/",
    "/places/projects/",
    "/places/categories/",
    "/places/categories/tree/",
]


def survey(n: int) -> dict[str, object]:
    """Each page's Report at size n, on data rolled back afterwards."""
    reports = {}
    with transaction.atomic():
        seed(n)
        thread = Thread.objects.order_by("pk").first().pk
        client = Client()
        for page in PAGES:
            url = page.format(thread=thread)
            with detect() as report:
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            reports[page] = report
        transaction.set_rollback(True)
    return reports


def where(frame: dict | None) -> str:
    if not frame:
        return "None"
    return f"{frame.get('filename')}:{frame.get('lineno')} {frame.get('code')}"


def proof(data: dict | None) -> str:
    if not data:
        return "None"
    return f"{data.get('status')} {data.get('before')}->{data.get('after')}"


def main() -> None:
    setup_test_environment()
    connection.creation.create_test_db(verbosity=0)
    small, large = survey(3), survey(6)
    for page in PAGES:
        before, after = small[page].summary["queries"], large[page].summary["queries"]
        assert after > before, f"{page}: {before} queries at n=3, {after} at n=6: not an N+1"
        print(f"\n== {page}  queries n=3: {before}, n=6: {after}; {len(large[page].findings)} finding(s) at n=6")
        for number, finding in enumerate(large[page].findings, 1):
            counts = f"{finding.count} queries, {finding.avoidable} avoidable"
            print(f"  {number}. {finding.kind} {finding.relation} ({counts})")
            print(f"     callsite: {where(finding.callsite)}")
            print(f"     origin:   {where(finding.origin)}")
            print(f"     fix:      {finding.snippets.get('fix')}")
            print(f"     line:     {finding.snippets.get('line')}")
            print(f"     proof:    {proof(finding.proof)}")
            print(f"     library:  {finding.library}")
            print(f"     note:     {finding.note}")
            if hasattr(finding, "place"):  # issue 20's new field, once it exists
                print(f"     place:    {finding.place}")


if __name__ == "__main__":
    main()
