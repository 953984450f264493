"""`alert_sensor` against a local HTTP server as the target (apprise's `json://`): one message
per day and group with signals, sent once, again after the target comes back, the token in its
URL never logged."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import dagster as dg
import pandas as pd
import pytest

from breadth_assets import schema
from breadth_assets.defs.alert_target import AlertTarget
from breadth_assets.defs.jobs import ticker_job
from breadth_assets.defs.sensors import alert_sensor as module
from breadth_assets.defs.sensors.alert_sensor import build_alert_sensor
from breadth_assets.stores.duckdb import DuckDBStore

DAYS = pd.bdate_range("2024-06-03", periods=3)
TOKEN = "s3cr3t-t0ken"
sensor = build_alert_sensor(configured=True)


class _Target(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def target():
    _Target.received = []
    server = HTTPServer(("127.0.0.1", 0), _Target)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def _url(port: int) -> str:
    return f"json://alerts:{TOKEN}@127.0.0.1:{port}/breadth"


def _store(tmp_path, signals: list[tuple]) -> DuckDBStore:
    store = DuckDBStore(path=str(tmp_path / "breadth.duckdb"))
    values = {"DATE": DAYS, "VARCHAR": "ALL", "BIGINT": 0, "BOOLEAN": False, "DOUBLE": 0.5}
    rows = pd.DataFrame(
        {name: values[kind] for name, kind in schema.BREADTH_COLUMNS.items()}, index=range(3)
    )
    fired = pd.DataFrame(signals, columns=list(schema.BREADTH_SIGNAL_COLUMNS))
    fired["date"] = pd.to_datetime(fired["date"])
    members = pd.DataFrame(columns=list(schema.BREADTH_MEMBER_COLUMNS))
    store.write_breadth(
        rows,
        members,
        {"ALL": ["AAA"]},
        DAYS[0].date(),
        DAYS[-1].date(),
        store.breadth_stale(),
        None,
        fired,
    )
    return store


def _tick(
    store, url: str, cursor: str | None = None, instance: dg.DagsterInstance | None = None
) -> tuple[dg.SkipReason, str | None]:
    context = dg.build_sensor_context(
        cursor=cursor,
        instance=instance or dg.DagsterInstance.ephemeral(),
        resources={"store": store, "alerts": AlertTarget(urls=url)},
    )
    result = sensor(context)
    return result, context.cursor


SIGNALS = [
    ("2024-06-04", "ALL", "mcclellan_cross_up", "mcclellan_osc -2.0 -> 3.1"),
    ("2024-06-04", "ALL", "zweig_thrust", "zweig_ema 0.620"),
]


def test_a_day_with_signals_sends_one_message_with_them(tmp_path, target):
    store = _store(tmp_path, SIGNALS)

    _tick(store, _url(target.server_port))

    [message] = _Target.received
    assert message["title"] == "breadth ALL 2024-06-04: mcclellan_cross_up, zweig_thrust"
    assert "zweig_thrust: zweig_ema 0.620" in message["message"]


def test_nothing_is_sent_while_a_ticker_run_is_unfinished(tmp_path, target):
    store = _store(tmp_path, SIGNALS)
    with dg.instance_for_test() as instance:
        run = instance.add_run(
            dg.DagsterRun(job_name=ticker_job.name, status=dg.DagsterRunStatus.STARTED)
        )
        result, cursor = _tick(store, _url(target.server_port), instance=instance)
        assert _Target.received == []
        assert "ticker_job run is queued or running" in result.skip_message

        instance.report_run_failed(run)
        _tick(store, _url(target.server_port), cursor, instance=instance)

    assert len(_Target.received) == 1


def test_a_message_sent_is_not_sent_again(tmp_path, target):
    store = _store(tmp_path, SIGNALS)
    _, cursor = _tick(store, _url(target.server_port))

    _tick(store, _url(target.server_port), cursor)

    assert len(_Target.received) == 1


def test_a_target_down_then_up_gets_the_message_once(tmp_path, target, monkeypatch):
    store = _store(tmp_path, SIGNALS)
    down = _url(1)  # nothing listens on port 1
    _, cursor = _tick(store, down)
    assert _Target.received == []
    _, cursor = _tick(store, _url(target.server_port), cursor)
    assert _Target.received == []  # waiting for its retry time

    later = module.time.time() + 120
    monkeypatch.setattr(module.time, "time", lambda: later)
    _, cursor = _tick(store, _url(target.server_port), cursor)
    _tick(store, _url(target.server_port), cursor)

    assert len(_Target.received) == 1


def test_the_token_in_the_url_is_never_logged(tmp_path, target, caplog):
    store = _store(tmp_path, SIGNALS)
    with caplog.at_level(logging.DEBUG):
        _, cursor = _tick(store, _url(1))
        _tick(store, _url(target.server_port))
    assert TOKEN not in caplog.text
    assert TOKEN not in (cursor or "")


def test_without_a_target_the_sensor_says_so(tmp_path):
    result, _ = _tick(_store(tmp_path, SIGNALS), "")
    assert "BREADTH_ALERT_URLS" in result.skip_message
