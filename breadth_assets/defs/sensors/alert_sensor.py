"""Sends one message per day and group that has breadth signals, once: the sensor's cursor
remembers what was sent, a failed send is tried again later with backoff, and nothing it does
can fail a run. Nothing is sent while a ticker or breadth run is unfinished: the day's signals
are read once breadth has been computed from every ticker run of it."""

import datetime as dt
import json
import time

import dagster as dg
import pandas as pd

from breadth_assets.analytics.signals import signal_message
from breadth_assets.defs.alert_target import ALERT_URLS_VARIABLE, AlertTarget
from breadth_assets.defs.sensors.breadth_sensor import runs_in_progress
from breadth_assets.stores.base import MarketStore

LOOKBACK_DAYS = 10
"""Calendar days before the last breadth day whose signals are still sent."""


def _key(day: pd.Timestamp, group: str) -> str:
    return f"{pd.Timestamp(day):%Y-%m-%d}|{group}"


def build_alert_sensor(configured: bool) -> dg.SensorDefinition:
    """On by default only when a target is configured (`BREADTH_ALERT_URLS` is set)."""

    @dg.sensor(
        name="alert_sensor",
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING
        if configured
        else dg.DefaultSensorStatus.STOPPED,
        description="Sends one message per day and group that has breadth signals to the "
        f"targets of ${ALERT_URLS_VARIABLE} (apprise URLs), once; a failed send is tried again "
        "after 1, 2, 4, 8 ... minutes, at most hourly.",
    )
    def alert_sensor(
        context: dg.SensorEvaluationContext, store: MarketStore, alerts: AlertTarget
    ) -> dg.SkipReason:
        if not alerts.configured():
            return dg.SkipReason(f"no alert target: set ${ALERT_URLS_VARIABLE}")
        busy = runs_in_progress(context.instance)
        if busy:
            return dg.SkipReason(f"waiting: {busy}")
        latest = store.read_breadth_before(dt.date.max)
        if latest is None:
            return dg.SkipReason("no breadth row yet")
        start = (latest["date"] - pd.Timedelta(days=LOOKBACK_DAYS)).date()
        state = json.loads(context.cursor) if context.cursor else {}
        sent = {key for key in state.get("sent", []) if key >= f"{start}"}
        retry: dict[str, list[float]] = {
            key: when for key, when in state.get("retry", {}).items() if key >= f"{start}"
        }
        signals = store.read_breadth_signals(start=start)
        now, delivered, waiting = time.time(), 0, 0
        for (day, group), rows in signals.groupby(["date", "group_name"], sort=True):
            key = _key(day, group)
            if key in sent:
                continue
            attempts, next_try = retry.get(key, [0, 0.0])
            if next_try > now:
                waiting += 1
                continue
            if alerts.send(*signal_message(day, group, rows)):
                sent.add(key)
                retry.pop(key, None)
                delivered += 1
                context.log.info(f"alert sent: {key} ({', '.join(rows['signal'])})")
            else:
                wait = alerts.retry_after(int(attempts) + 1)
                retry[key] = [attempts + 1, now + wait]
                waiting += 1
                context.log.warning(f"alert {key} not delivered; trying again in {wait} s")
        context.update_cursor(json.dumps({"sent": sorted(sent), "retry": retry}))
        return dg.SkipReason(f"{delivered} messages sent, {waiting} waiting to be sent again")

    return alert_sensor
