"""``manage.py prefetch_report``: crawl pages and write one deduplicated report (for CI too).

    python manage.py prefetch_report /orders/ /menu/ --format md
    python manage.py prefetch_report --all-urls --user admin --format sarif --output n+1.sarif
    python manage.py prefetch_report --all-urls --fail-on n_plus_one    # exit code 1 if any remain
"""

from __future__ import annotations

from typing import Any, Iterator

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.test.utils import override_settings
from django.urls import URLResolver, get_resolver
from django.utils.regex_helper import normalize

from ...findings import KINDS
from ...session import aggregate, format_for, render

# Routes of the toolbar itself are never crawled.
SKIP_NAMESPACES = ("djdt",)


def parameterless_routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL path of the URLconf that needs no argument, in URLconf order."""
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
            yield "/" + possibilities[0][0]


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
        parser.add_argument("--fail-on", action="append", choices=(*KINDS, "any"), default=[], metavar="KIND",
                            help=f"exit with status 1 when findings of KIND remain ({', '.join(KINDS)} or any); "
                                 "may be repeated")
        parser.add_argument("--user", metavar="USERNAME", help="log in as this user before requesting")

    def handle(self, *args: Any, **options: Any) -> None:
        urls = list(options["urls"])
        if options["all_urls"]:
            urls += [url for url in parameterless_routes() if url not in urls]
        if not urls:
            raise CommandError("Give at least one URL, or --all-urls.")
        # Without the toolbar's middleware: its panels would analyse every page a second time, and a
        # database store would keep the crawl's requests in the developer's history.
        middleware = [m for m in settings.MIDDLEWARE if not m.startswith("debug_toolbar.")]
        sources = []
        with override_settings(MIDDLEWARE=middleware):
            client = self._client(options.get("user"))
            for url in urls:
                source, report = self._request(client, url)
                sources.append((source, report))
                self.stderr.write(f"GET {url} {source['status_code']}: {len(report['findings'])} findings")
        data = aggregate(sources)
        fmt = options["format"] or (format_for(options["output"]) if options["output"] else "md")
        text = render(data, fmt)
        if options["output"]:
            with open(options["output"], "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stderr.write(f"Wrote {options['output']} ({len(data['findings'])} findings).")
        else:
            self.stdout.write(text, ending="")
        failing = [f for f in data["findings"]
                   if "any" in options["fail_on"] or f["kind"] in options["fail_on"]]
        if failing:
            kinds = ", ".join(sorted({f["kind"] for f in failing}))
            raise CommandError(f"{len(failing)} findings remain ({kinds}).", returncode=1)

    def _client(self, username: str | None) -> Any:
        from django.test import Client

        client = Client(raise_request_exception=False, SERVER_NAME=_host())
        if username:
            from django.contrib.auth import get_user_model

            model = get_user_model()
            try:
                user = model._default_manager.get_by_natural_key(username)
            except model.DoesNotExist:
                raise CommandError(f"No user {username!r}.") from None
            client.force_login(user)
        return client

    def _request(self, client: Any, url: str) -> tuple[dict, dict]:
        from ...analyze import detect

        with detect() as report:
            response = client.get(url)
        return {"url": url, "method": "GET", "status_code": response.status_code}, report.to_dict()
