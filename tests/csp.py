"""A strict Content-Security-Policy with a fresh nonce per response, for the browser tests.

The nonce is exposed as ``request.csp_nonce``, the attribute django-csp sets and DDT reads first
(``debug_toolbar.utils.get_csp_nonce``), so the same test runs on Django 5.2, which has no CSP
support of its own. Scripts need the nonce (or to be inserted by a nonced script:
'strict-dynamic', which DDT's AJAX panel scripts rely on); stylesheets need the nonce, always.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = (
    "default-src 'self'; "
    "script-src 'nonce-{nonce}' 'strict-dynamic'; "
    "style-src 'nonce-{nonce}'; "
    "img-src 'self' data:"
)


class NonceCSPMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        nonce = secrets.token_urlsafe(16)
        request.csp_nonce = nonce
        response = self.get_response(request)
        response.headers["Content-Security-Policy"] = POLICY.format(nonce=nonce)
        return response


class UseDjangoNonceMiddleware:
    """Reads Django 6's lazy CSP nonce, as a page whose template writes ``{{ csp_nonce }}`` does.

    Django's ContentSecurityPolicyMiddleware puts the nonce in the header only when something
    used it; DDT then adds it to its own assets (and leaves it out otherwise).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from django.middleware.csp import get_nonce

        str(get_nonce(request))
        return self.get_response(request)
