"""Clew's web processes under a production WSGI server (gunicorn), any number at once.

Two factories, for gunicorn's ``module:factory()`` form, each building its app from the
environment as ``clew serve`` does (``CLEW_DATABASE_URL``, ``CLEW_SECRET_KEY``, ``CLEW_AUTH``,
``CLEW_OTLP_TOKEN``, ...; see ``clew.app.DEFAULTS``)::

    gunicorn -k gthread --threads 8 -w 4 -b 0.0.0.0:8050 'clew.wsgi:console()'
    gunicorn -k gthread --threads 8 -w 4 -b 0.0.0.0:4318 'clew.wsgi:receiver()'

``console()`` is the whole app (console, JSON API, login, ``/healthz`` and the OTLP receiver);
``receiver()`` answers only the OTLP paths (``POST /v1/traces``, ``/v1/metrics``) and
``/healthz``, as ``clew serve --otlp-port`` does. Each creates or upgrades the schema under a
lock (``clew.store.schema_lock``), so that workers starting together on a new database make it
once instead of racing, and returns with no database connection open, so that it may be built
before gunicorn forks (``--preload``) or in every worker. ``clew serve --workers N`` runs both
on one gunicorn (``serve``).

What the processes must agree on lives in the database, never in one process:

- the session signing key: ``CLEW_SECRET_KEY``, else one made once and kept in ``settings``
  (the first process to need it stores it; the others read that one);
- sessions, their CSRF token and OpenID Connect's state and nonce: in the signed session cookie;
- accounts, roles, API tokens and failed logins: in their tables, read at every request;
- spans: a receiver answers 200 only once its batch is committed; batch writes take the writers'
  lock (an advisory lock on PostgreSQL, SQLite's write lock), and a trace whose spans reached
  several receivers is paired by whichever write comes second, from the spans stored before it;
- connector metrics: a cumulative point counts as its difference from the series' last point,
  which the store keeps (``metric_series``), under the same lock.

What each process keeps for itself is a cache of what is the same everywhere (the policy packs'
rule table, the CSP's script hashes, the OpenID provider's metadata) or of short-lived views
(exemplar traces fetched from a trace query API, for two minutes), and the receiver's queue of
requests waiting for their commit, which no answer depends on before it is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from flask import Flask

from clew import receiver as otlp
from clew import store
from clew.app import create_app

#: Threads per gunicorn worker (``clew serve`` gives waitress as many).
THREADS = 8
#: The largest request body read on any route (the receiver's own cap, 20 MiB after
#: decompression, is checked first on its path): waitress refuses the same under ``clew serve``.
MAX_CONTENT_LENGTH = 2 * otlp.MAX_BODY_BYTES

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def _ready(app: Flask) -> Flask:
    """``app`` with its schema made and no connection left in its pool (a connection must not
    cross a fork), and a cap on request bodies unless one is configured."""
    engine = store.engine_of(app)
    store.ensure_schema(engine)  # under the schema lock: workers may start together
    engine.dispose()
    if app.config.get("MAX_CONTENT_LENGTH") is None:
        app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    return app


def console(config: Mapping[str, Any] | None = None) -> Flask:
    """The whole web app (console, JSON API, logins, ``/healthz``, ``POST /v1/traces``) from the
    environment and ``config``, its schema made: gunicorn's ``'clew.wsgi:console()'``."""
    return _ready(create_app(config))


def receiver(config: Mapping[str, Any] | None = None) -> WSGIApp:
    """The OTLP/HTTP receiver alone (and ``/healthz``; every other path answers 404), from the
    environment and ``config``, its schema made: gunicorn's ``'clew.wsgi:receiver()'``."""
    return otlp.receiver_only(console(config))


class _ByPort:
    """Requests that reached the receiver's port go to the receiver alone, the others to the
    whole app. The port is known once gunicorn has bound it (``--otlp-port 0`` picks one)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.receiver_only = otlp.receiver_only(app)
        self.receiver_port: str | None = None

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self.receiver_port is not None and environ.get("SERVER_PORT") == self.receiver_port:
            return self.receiver_only(environ, start_response)
        return self.app(environ, start_response)


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _gunicorn_options(
    app: Flask,
    host: str,
    port: int,
    otlp_port: int,
    workers: int,
    announce: Callable[[str], None],
) -> tuple[WSGIApp, dict[str, Any]]:
    """The WSGI app and gunicorn settings ``serve`` runs: ``workers`` processes of ``THREADS``
    threads each, the app loaded once before they fork, ``announce`` told each URL once the
    sockets are bound, and each worker's receiver drained as it exits."""
    dispatch = _ByPort(app)
    binds = [_address(host, port)] + ([_address(host, otlp_port)] if otlp_port else [])

    def when_ready(server: Any) -> None:
        ports = [listener.getsockname()[1] for listener in server.LISTENERS]
        if otlp_port:
            dispatch.receiver_port = str(ports[1])  # set before the workers fork
            announce(f"OTLP/HTTP receiver on http://{_address(host, ports[1])}{otlp.PATH}")
        announce(
            f"Clew console on http://{_address(host, ports[0])}/ (OTLP/HTTP also at {otlp.PATH};"
            f" {workers} worker processes)"
        )

    def post_fork(_server: Any, _worker: Any) -> None:
        # The pool's connections, if any, belong to the parent; the worker opens its own.
        store.engine_of(app).dispose(close=False)

    def worker_exit(_server: Any, _worker: Any) -> None:
        otlp.stop(app)  # batches already queued are committed before the worker ends

    options: dict[str, Any] = {
        "bind": binds,
        "workers": workers,
        "worker_class": "gthread",
        "threads": THREADS,
        "preload_app": True,
        "proc_name": "clew",
        # Clew's own CLEW_TRUSTED_PROXY_HOPS decides which forwarded headers count.
        "forwarded_allow_ips": "",
        # gunicorn's runtime control socket sits at one path per user: two servers would take
        # it from each other. `clew serve` is stopped and scaled by signals instead.
        "control_socket_disable": True,
        "when_ready": when_ready,
        "post_fork": post_fork,
        "worker_exit": worker_exit,
    }
    return dispatch, options


def serve(
    app: Flask,
    host: str,
    port: int,
    otlp_port: int,
    workers: int,
    announce: Callable[[str], None],
) -> None:
    """Serve ``app`` (and its receiver alone on ``otlp_port``, unless 0) with gunicorn in
    ``workers`` processes until SIGINT or SIGTERM (SIGTERM lets requests under way finish)."""
    from gunicorn.app.base import BaseApplication

    wsgi_app, options = _gunicorn_options(app, host, port, otlp_port, workers, announce)

    class _Gunicorn(BaseApplication):
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> WSGIApp:
            return wsgi_app

    _Gunicorn().run()
