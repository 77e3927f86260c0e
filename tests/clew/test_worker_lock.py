"""Workers sharing a database share its jobs: each run of a job is made by one worker, once per
interval (``clew.scheduler``, ``clew.pull_cli.shared_run``)."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import text, update

from clew import pull_cli, scheduler
from clew.store.models import JobRunRow
from clew.store.retention import Horizons


def test_a_job_lock_is_held_by_one_holder_at_a_time_on_postgresql(pg_engine):
    key = scheduler.job_key("pull", "folder", "/srv/contracts", None)
    with scheduler.exclusive(pg_engine, key) as first:
        with scheduler.exclusive(pg_engine, key) as second:  # another session: refused
            assert (first, second) == (True, False)
        other = scheduler.job_key("check", "24h", None, None, None)
        with scheduler.exclusive(pg_engine, other) as unrelated:
            assert unrelated
    with scheduler.exclusive(pg_engine, key) as again:
        assert again


_HOLD = textwrap.dedent(
    """
    import sys, time
    from clew import scheduler, store
    engine = store.open_engine(sys.argv[1])
    with scheduler.exclusive(engine, sys.argv[2]) as taken:
        print("taken" if taken else "refused", flush=True)
        time.sleep(float(sys.argv[3]))
    """
)


def test_a_job_lock_on_sqlite_is_seen_by_other_processes(engine):
    database = engine.url.database
    key = scheduler.job_key("retention")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, database, key, "30"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "taken"
        with scheduler.exclusive(engine, key) as taken:
            assert not taken
        with scheduler.exclusive(engine, scheduler.job_key("another")) as taken:
            assert taken  # one byte per job: other jobs are free
    finally:
        holder.kill()
        holder.communicate()
    with scheduler.exclusive(engine, key) as taken:
        assert taken  # the holder's end released it


def test_a_run_made_within_the_interval_by_any_worker_is_not_made_again(engine, tmp_path):
    folder = tmp_path / "contracts"
    folder.mkdir()
    job = pull_cli.PullJob(str(folder), "folder", every_s=60)
    emitted = []

    def emit(_job, report):
        emitted.append(report)

    first = pull_cli.shared_run(engine, job, emit)
    assert first.problems == []
    second = pull_cli.shared_run(engine, job, emit)
    assert isinstance(second, pull_cli.Skipped)
    assert second.reason.startswith(f"{scheduler.worker_name()} started it at ")
    latest = scheduler.latest_run(engine, pull_cli.key_of(job))
    with engine.begin() as conn:  # as if that run were longer ago than the interval
        earlier = latest.started_at - timedelta(seconds=61)
        conn.execute(update(JobRunRow.__table__).values(started_at=earlier))
    third = pull_cli.shared_run(engine, job, emit)
    assert not isinstance(third, pull_cli.Skipped)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT name, outcome, summary FROM job_runs ORDER BY id")).all()
    assert [(name, outcome) for name, outcome, _ in runs] == [(f"pull folder {folder}", "ok")] * 2
    assert runs[0][2].startswith(f"folder {folder}: 0 files")


def test_a_run_held_by_another_worker_is_left_to_it(engine, tmp_path):
    job = pull_cli.RetentionJob(Horizons(raw_s=86_400), every_s=60)
    emitted = []
    # The lock is per process on SQLite: another one holds it.
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, engine.url.database, pull_cli.key_of(job), "30"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "taken"
        skipped = pull_cli.shared_run(engine, job, lambda _j, r: emitted.append(r))
    finally:
        holder.kill()
        holder.communicate()
    assert skipped == pull_cli.Skipped("retention", "another worker is running it")
    assert pull_cli.summary(skipped) == "skipped retention: another worker is running it"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_runs")).scalar_one() == 0


@pytest.mark.postgres
def test_two_workers_on_one_database_never_run_the_same_job_twice(
    pg_engine, postgres_url, tmp_path
):
    """Two ``clew worker`` processes with the same file: every run of each job is made by one of
    them, runs of a job never overlap, and no job runs more often than its interval allows."""
    folder = tmp_path / "contracts"
    folder.mkdir()
    config = tmp_path / "worker.toml"
    config.write_text(
        f'[[pull]]\nurl = "{folder}"\nkind = "folder"\nevery = "1s"\n\n'
        '[[check]]\nevery = "2s"\nsince = "1h"\n\n'
        '[retention]\nraw = "7d"\nevery = "1s"\n'
    )
    env = {**os.environ, "CLEW_DATABASE_URL": postgres_url}
    clew = str(Path(sys.executable).with_name("clew"))
    command = [clew, "worker", "--config", str(config), "--json"]
    workers = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs: list[tuple[bytes, bytes]] = [(b"", b"")] * 2

    def collect(n: int) -> None:
        outputs[n] = workers[n].communicate()

    readers = [threading.Thread(target=collect, args=(n,)) for n in range(2)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _runs(pg_engine, "check policies since 1h") < 2:
        time.sleep(0.2)
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for reader in readers:
        reader.join(30)
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    with pg_engine.connect() as conn:
        runs = conn.execute(
            text("SELECT name, worker, started_at, finished_at FROM job_runs ORDER BY started_at")
        ).all()
    by_job: dict[str, list] = {}
    for name, worker, started, finished in runs:
        by_job.setdefault(name, []).append((worker, started, finished))
    every = {f"pull folder {folder}": 1, "check policies since 1h": 2, "retention": 1}
    assert set(by_job) == set(every)
    for name, job_runs in by_job.items():
        assert len(job_runs) >= 2, (name, job_runs)
        for (_, start, end), (_, next_start, _) in itertools.pairwise(job_runs):
            assert end is not None and end <= next_start, (name, job_runs)  # never overlapping
            assert (next_start - start).total_seconds() >= every[name] * 0.9 - 0.01, job_runs
    lines = [
        orjson.loads(line) for stdout, _ in outputs for line in stdout.splitlines() if line.strip()
    ]
    made = [line for line in lines if "skipped" not in line]
    left = [line for line in lines if "skipped" in line]
    assert len(made) == len(runs)  # every run printed by the worker that made it
    assert left, "the two workers' turns never met"
    host = scheduler.worker_name().rsplit(":", 1)[0]
    assert {worker for _, worker, _, _ in runs} <= {f"{host}:{w.pid}" for w in workers}


def _runs(engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM job_runs WHERE name = :n AND finished_at IS NOT NULL"),
            {"n": name},
        ).scalar_one()


def test_a_retention_table_is_read_from_the_worker_file(tmp_path: Path):
    config = tmp_path / "worker.toml"
    config.write_text('[retention]\nraw = "7d"\nminutes = "30d"\nhours = "400d"\n')
    (job,) = pull_cli.load_config(config)
    assert job == pull_cli.RetentionJob(Horizons(7 * 86_400, 30 * 86_400, 400 * 86_400), 3600.0)
    for toml, fault in [
        ('[retention]\nevery = "1h"', "none of raw, minutes, hours is set"),
        ('[retention]\nraw = "12h"', "at least a day"),
        ('[retention]\nraw = "30d"\nminutes = "7d"', "raw is kept no longer than minutes"),
        ('[retention]\nraw = "soon"', "raw 'soon' is not a duration"),
        ('[retention]\nraw = "7d"\ndays = 3', "unknown keys ['days']"),
        ('[[retention]]\nraw = "7d"', "retention is one table"),
    ]:
        config.write_text(toml)
        with pytest.raises(ValueError, match=f"^{re.escape(str(config))}: .*{re.escape(fault)}"):
            pull_cli.load_config(config)


def test_clew_serve_runs_a_worker_file_s_jobs_inside_and_stops_them_with_itself(tmp_path):
    """The embedded tier: one process serving the console and running the jobs."""
    from clew import store
    from tests.clew.test_registries import ORDERS_V1, stored
    from tests.conftest import interruptible

    folder = tmp_path / "contracts"
    folder.mkdir()
    contract = folder / "orders.yaml"
    contract.write_text(ORDERS_V1)
    settled = contract.stat().st_mtime - 60
    os.utime(contract, (settled, settled))
    config = tmp_path / "worker.toml"
    config.write_text(f'[[pull]]\nurl = "{folder}"\nkind = "folder"\nevery = "1s"\n')
    db = tmp_path / "clew.db"
    clew = str(Path(sys.executable).with_name("clew"))
    process = subprocess.Popen(
        [clew, "serve", "--db", str(db), "--port", "0", "--jobs", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"CLEW_AUTH": "false"},
        preexec_fn=interruptible,
    )
    try:
        assert process.stdout.readline().startswith(b"Clew console on http://127.0.0.1:")
        engine = store.open_engine(str(db))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stored(engine):
            time.sleep(0.2)
        assert list(stored(engine)) == ["Orders@1.0"]
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr.decode()
    said = stderr.decode()
    assert f"1 job of {config} run here, as clew worker runs them" in said
    assert f"folder {folder}: 1 files, 1 read, 1 stored" in said
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_runs")).scalar_one() >= 1
    engine.dispose()


def test_clew_serve_leaves_jobs_to_clew_worker_under_gunicorn(tmp_path):
    config = tmp_path / "worker.toml"
    config.write_text('[retention]\nraw = "7d"\n')
    from clew.cli import main

    refused = CliRunner().invoke(
        main, ["serve", "--workers", "2", "--jobs", str(config), "--db", str(tmp_path / "c.db")]
    )
    assert refused.exit_code == 2 and "run clew worker --config FILE beside" in refused.stderr
    config.write_text('[retention]\nraw = "12h"\n')
    bad = CliRunner().invoke(main, ["serve", "--jobs", str(config), "--db", str(tmp_path / "c.db")])
    assert bad.exit_code == 2 and "at least a day" in bad.stderr


def test_clew_demo_evaluates_the_policies_again_every_hour_inside(tmp_path, monkeypatch):
    """``clew demo`` starts its scheduler beside the console: the policy check of the sample's
    window, first an hour after the load's own evaluation."""
    from clew import cli

    started = []
    monkeypatch.setattr(cli, "_serve", lambda app, host, port: None)
    monkeypatch.setattr(
        pull_cli,
        "in_process",
        lambda engine, jobs, emit, first_in_s=0.0: started.append((jobs, first_in_s)) or _Stopped(),
    )
    monkeypatch.setattr("clew.demo.load_sample", lambda engine, progress=None: {"loaded": False})
    result = CliRunner().invoke(cli.main, ["demo", "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output
    assert started == [([pull_cli.CheckJob(every_s=3600.0, since="24h")], 3600.0)]
    assert "policies are evaluated again every hour" in result.stderr


class _Stopped:
    def shutdown(self, wait: bool = True) -> None:
        pass
