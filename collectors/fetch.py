"""What a document points at over the network (a remote ``$ref``, a catalog's ``$text`` URL),
fetched only where the operator allows it: Clew fetches nothing by default.

``CLEW_FETCH_ALLOW`` lists URL prefixes (comma- or space-separated, each ``http://`` or
``https://``, e.g. ``https://schemas.example.com/``); a URL is fetched when it starts with one of
them. A fetch has a timeout, a size cap (``safe_yaml.MAX_BYTES``), follows redirects only within
the allowed prefixes, and is done once per process and URL.
"""

from __future__ import annotations

import os
from functools import lru_cache
from urllib.parse import urlsplit

from collectors import safe_yaml

ALLOW_ENV = "CLEW_FETCH_ALLOW"
TIMEOUT_S = 10.0


class FetchError(Exception):
    """A URL that could not be fetched: the message names it and why."""


def allowed_prefixes() -> tuple[str, ...]:
    """The URL prefixes ``CLEW_FETCH_ALLOW`` allows (none by default)."""
    raw = os.environ.get(ALLOW_ENV, "")
    prefixes = [p.strip() for p in raw.replace(",", " ").split()]
    return tuple(
        p for p in prefixes if urlsplit(p).scheme in ("http", "https") and urlsplit(p).netloc
    )


def allowed(url: str) -> bool:
    """Whether ``url`` may be fetched."""
    return any(url.startswith(prefix) for prefix in allowed_prefixes())


def fetch(url: str) -> bytes:
    """The body at ``url``; ``FetchError`` when it is not allowed or cannot be fetched."""
    if not allowed(url):
        raise FetchError(f"{url}: not fetched (not under a prefix {ALLOW_ENV} allows)")
    return _fetch(url, allowed_prefixes())


@lru_cache(maxsize=1)
def _redirects() -> type:
    """A redirect handler that follows redirects within the allowed prefixes only (made on the
    first fetch: urllib.request is slow to import, and most runs fetch nothing)."""
    import urllib.request

    class Redirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            if not allowed(newurl):
                raise FetchError(f"{req.full_url}: redirected to {newurl}, which is not allowed")
            return super().redirect_request(req, fp, code, msg, headers, newurl)

    return Redirects


@lru_cache(maxsize=256)
def _fetch(url: str, _prefixes: tuple[str, ...]) -> bytes:
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(_redirects()())
    request = urllib.request.Request(url, headers={"Accept": "application/json, */*"})
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            body = response.read(safe_yaml.MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"{url}: {reason}") from None
    if len(body) > safe_yaml.MAX_BYTES:
        raise FetchError(f"{url}: larger than {safe_yaml.MAX_BYTES:,} bytes")
    return body
