"""``manage.py prefetch_report``: crawl pages and write one deduplicated report (for CI too).

    python manage.py prefetch_report /orders/ /menu/ --format md
    python manage.py prefetch_report --all-urls --user admin --format sarif --output n+1.sarif
    python manage.py prefetch_report --all-urls --fail-on n_plus_one    # exit code 1 if any remain
    python manage.py prefetch_report --all-urls --format json --output n1-baseline.json   # record
    python manage.py prefetch_report --all-urls --baseline n1-baseline.json --fail-on new  # new ones only

``--fail-on`` takes kinds, ``any`` and ``new``: without ``new``, the run fails when findings of
the kinds remain (known or not); with ``new`` (and ``--baseline``), only findings not in the
baseline count, restricted to the kinds given with it (``--fail-on new --fail-on n_plus_one``:
new N+1s only; ``--fail-on new`` alone: new findings of any kind), and so does a page whose
query count grew past the baseline's by more than ``BUDGET_TOLERANCE``.

``--all-urls`` requests every route that takes no parameter and every location of the project's
sitemaps (a CMS's catch-all page router has no other list of its pages), never a logout route or
the toolbar's own; with ``--user``, a page that logged the user out is followed by a new login.
"""

from __future__ import annotations

import re
from typing import Any, Iterator
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings
from django.urls import URLResolver, get_resolver
from django.utils.regex_helper import normalize

from ... import baseline, hooks, shared
from ... import capture as cap
from ...analyze import analyze
from ...conf import get_config
from ...findings import KINDS
from ...session import aggregate, format_for

# Routes of the toolbar itself are never crawled.
SKIP_NAMESPACES = ("djdt",)
# Nor routes that end the crawl's session when requested with GET (many sites log out on GET).
LOGOUT = re.compile(r"log[-_ ]?out|sign[-_ ]?out|log[-_ ]?off", re.I)


def parameterless_routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL path of the URLconf that needs no argument, in URLconf order; never a logout
    route (by its path or its name) nor the toolbar's."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        part = pattern.pattern.regex.pattern.lstrip("^")
        if isinstance(pattern, URLResolver):
            if pattern.namespace in SKIP_NAMESPACES:
                continue
            yield from parameterless_routes(pattern, prefix + part)
            continue
        possibilities = normalize("^" + prefix + part)
        if len(possibilities) == 1 and not possibilities[0][1]:
            url = "/" + possibilities[0][0]
            if not is_logout(url, getattr(pattern, "name", None)):
                yield url


def is_logout(url: str, name: str | None = None) -> bool:
    return bool(LOGOUT.search(url) or (name and LOGOUT.search(name)))


def sitemap_locations(resolver: URLResolver | None = None) -> Iterator[str]:
    """The paths of every item of the sitemaps the URLconf serves (``django.contrib.sitemaps``),
    without rendering them; a sitemap that cannot list its items is skipped."""
    try:
        from django.contrib.sitemaps import Sitemap
    except ImportError:  # pragma: no cover - contrib is always there, but a trimmed Django may not be
        return
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace not in SKIP_NAMESPACES:
                yield from sitemap_locations(pattern)
            continue
        sitemaps = (getattr(pattern, "default_args", None) or {}).get("sitemaps")
        if not isinstance(sitemaps, dict):
            continue
        for sitemap in sitemaps.values():
            try:
                instance = sitemap() if isinstance(sitemap, type) else sitemap
                if not isinstance(instance, Sitemap):
                    continue
                for item in instance.items():
                    location = instance._location(item) if hasattr(instance, "_location") else instance.location(item)
                    path = _local_path(location)
                    if path is not None:
                        yield path
            except Exception:  # a sitemap of the project failed: the routes are still crawled
                continue


def _local_path(location: Any) -> str | None:
    """A sitemap location as the test client requests it: a path, or the path and query of an
    absolute URL (CMS sitemaps write ``http://localhost/blog/``)."""
    if not isinstance(location, str):
        return None
    if location.startswith("/"):
        return location
    parts = urlsplit(location)
    if parts.scheme in ("http", "https") and parts.path.startswith("/"):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return None


def _host() -> str:
    """A host name the project accepts, so the test client is not refused with a 400."""
    for host in settings.ALLOWED_HOSTS:
        host = host.lstrip(".")
        if host and "*" not in host:
            return host
    return "localhost"


class Command(BaseCommand):
    help = (
        "Request URLs through Django's test client and write one report of the N+1 and duplicate "
        "queries found, deduplicated by relation and call site (Markdown, JSON or SARIF)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("urls", nargs="*", metavar="URL", help="paths to request with GET, e.g. /orders/")
        parser.add_argument("--all-urls", action="store_true",
                            help="also request every route of the URLconf that takes no parameter")
        parser.add_argument("--format", choices=("md", "json", "sarif"),
                            help="report format (default: from the --output extension, else md)")
        parser.add_argument("--output", metavar="PATH", help="write the report to PATH instead of stdout")
        parser.add_argument("--fail-on", action="append", choices=(*KINDS, "any", "new"), default=[], metavar="KIND",
                            help=f"exit with status 1 when findings of KIND remain ({', '.join(KINDS)} or any); "
                                 "may be repeated; 'new' (with --baseline): only findings not in the baseline "
                                 "count, of the kinds given with it if any, and pages over their query budget")
        parser.add_argument("--baseline", metavar="PATH",
                            help="compare with a JSON report written before (e.g. --format json --output PATH): "
                                 "the report says what is new, still there and fixed")
        parser.add_argument("--user", metavar="USERNAME", help="log in as this user before requesting "
                                                                    "(and again if a page logged it out)")
        parser.add_argument("--max-urls", type=int, metavar="N",
                            help="request at most N URLs (the given ones first)")

    def handle(self, *args: Any, **options: Any) -> None:
        urls = list(options["urls"])
        if options["all_urls"]:
            for url in [*parameterless_routes(), *sitemap_locations()]:
                if url not in urls:
                    urls.append(url)
        if not urls:
            raise CommandError("Give at least one URL, or --all-urls.")
        if "new" in options["fail_on"] and not options.get("baseline"):
            raise CommandError("--fail-on new needs --baseline PATH.")
        recorded = self._baseline(options.get("baseline"))
        if options.get("max_urls") is not None:
            if options["max_urls"] < 1:
                raise CommandError("--max-urls must be at least 1.")
            if len(urls) > options["max_urls"]:
                self.stderr.write(f"Requesting the first {options['max_urls']} of {len(urls)} URLs (--max-urls).")
                urls = urls[: options["max_urls"]]
        # Without the toolbar's middleware: its panels would analyse every page a second time, and a
        # database store would keep the crawl's requests in the developer's history.
        middleware = [m for m in settings.MIDDLEWARE if not m.startswith("debug_toolbar.")]
        sources = []
        # Every page is requested first and analysed after: a fix on a line that other pages
        # also pass through (a helper, a model method) is replayed on each of them (shared.py).
        hooks.install()  # normally done by AppConfig.ready; the crawl also works without the app
        with override_settings(MIDDLEWARE=middleware), shared.crawling() as pages:
            username = options.get("user")
            client, user = self._client(username)
            for url in urls:
                source, capture = self._request(client, url)
                sources.append(source)
                capture.compact()  # held until every page was requested
                pages.append(shared.Held(capture, f"GET {url}"))
                if user is not None and not self._logged_in(client, user):
                    self.stderr.write(f"GET {url} logged {username} out: logged in again for the next URLs.")
                    client.force_login(user)
            config = get_config()
            reports = []
            for source, page in zip(sources, pages):
                report = analyze(page.capture, config).to_dict()
                reports.append((source, report))
                self.stderr.write(f"GET {source['url']} {source['status_code']}: {len(report['findings'])} findings")
        data = aggregate(reports)
        comparison = None
        if recorded is not None:
            comparison = baseline.compare(data, recorded, int(get_config()["BUDGET_TOLERANCE"]))
            data = baseline.mark(data, comparison)
            self.stderr.write(f"Against {options['baseline']}: {comparison.headline()}.")
        fmt = options["format"] or (format_for(options["output"]) if options["output"] else "md")
        text = baseline.render(data, fmt)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stderr.write(f"Wrote {options['output']} ({len(data['findings'])} findings).")
        else:
            self.stdout.write(text, ending="")
        failures = self._failures(options["fail_on"], data["findings"], comparison)
        if failures:
            raise CommandError(failures, returncode=1)

    @staticmethod
    def _baseline(path: str | None) -> baseline.Baseline | None:
        if not path:
            return None
        try:
            return baseline.load(path)
        except (OSError, ValueError) as exc:
            raise CommandError(f"--baseline {path}: {exc}") from None

    @staticmethod
    def _failures(fail_on: list[str], findings: list[dict], comparison: baseline.Comparison | None) -> str:
        """Why the crawl fails (empty: it does not); see the module docstring for ``new``."""
        kinds = [kind for kind in fail_on if kind != "new"]
        if "new" in fail_on and comparison is not None:
            failing = [f for f in comparison.new if not kinds or "any" in kinds or f["kind"] in kinds]
            reasons = [f"{len(failing)} new findings ({', '.join(sorted({f['kind'] for f in failing}))})"] \
                if failing else []
            if comparison.budgets:
                reasons.append(f"{len(comparison.budgets)} pages over their query budget "
                               f"({', '.join(b['key'] for b in comparison.budgets)})")
            return "; ".join(reasons) + "." if reasons else ""
        failing = [f for f in findings if "any" in kinds or f["kind"] in kinds]
        if not failing:
            return ""
        return f"{len(failing)} findings remain ({', '.join(sorted({f['kind'] for f in failing}))})."

    def _client(self, username: str | None) -> tuple[Any, Any]:
        """The test client, logged in as ``username`` when given, and that user (or None)."""
        from django.test import Client

        client = Client(raise_request_exception=False, SERVER_NAME=_host())
        user = None
        if username:
            from django.contrib.auth import get_user_model

            model = get_user_model()
            try:
                user = model._default_manager.get_by_natural_key(username)
            except model.DoesNotExist:
                raise CommandError(f"No user {username!r}.") from None
            client.force_login(user)
        return client, user

    @staticmethod
    def _logged_in(client: Any, user: Any) -> bool:
        """Whether the client's session still holds ``user`` (a page may have logged it out)."""
        from django.contrib.auth import SESSION_KEY

        return str(client.session.get(SESSION_KEY)) == str(user.pk)

    def _request(self, client: Any, url: str) -> tuple[dict, cap.Capture]:
        with cap.capturing() as capture:
            response = client.get(url)
        return {"url": url, "method": "GET", "status_code": response.status_code}, capture
