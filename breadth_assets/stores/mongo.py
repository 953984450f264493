"""MongoDB as the store, for teams whose dashboards already read prices and breadth from it."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import dagster as dg
import pandas as pd
import pymongo
from pydantic import Field, PrivateAttr
from pymongo.errors import BulkWriteError, PyMongoError
from pymongo.uri_parser import parse_uri

from breadth_assets import schema
from breadth_assets.analytics.breadth import HIGH_LOW_DAYS
from breadth_assets.schema import ALL_GROUP
from breadth_assets.stores.base import (
    PREVIOUS_COLUMNS,
    BreadthSteps,
    MarketStore,
    StaleMark,
    StoreError,
)
from breadth_assets.stores.mongo_breadth import STALE, UNIVERSE, MongoSteps, migrate
from breadth_assets.stores.mongo_documents import (
    as_documents,
    as_frame,
    breadth_query,
    bson_date,
    by_id,
    key_text,
)

_clients: dict[str, pymongo.MongoClient] = {}
_clients_lock = threading.Lock()


class MongoStore(MarketStore):
    """Collections `prices`, `indicators`, `breadth`, `breadth_members`, ..., field names as in
    docs/design.md "Tables"; `breadth_universe` holds a document per breadth group (`_id` the
    group, `tickers` its tickers the stored rows were computed over).

    Dates are BSON dates at midnight UTC and NULL is null. Writes are bulk upserts on the
    unique keys, unordered and in chunks: MongoDB has no transaction here, so a failed chunk
    names the keys it lost and writing the partition again completes it.
    """

    kind: ClassVar[str] = "mongodb"

    uri: str = Field(
        repr=False,
        description="The connection string; pass EnvVar('MONGODB_URI') so it never shows.",
    )
    database: str = Field(default="breadth", description="The database holding the collections.")
    server_selection_timeout_ms: int = Field(
        default=5000, description="How long to look for a server before failing."
    )
    write_chunk_rows: int = Field(default=10_000, description="Rows per bulk write.")
    _indexed: bool = PrivateAttr(default=False)

    def _uri(self) -> str:
        """The connection string. Dagster resolves an EnvVar for a run; a store used outside one
        (the CLI's closing lines) reads the variable here."""
        if isinstance(self.uri, dg.EnvVar):
            value = self.uri.get_value()
            if not value:
                raise StoreError(f"MongoDB store: ${self.uri.env_var_name} is not set")
            return value
        return self.uri

    def _hosts(self) -> str:
        try:
            return ", ".join(f"{host}:{port}" for host, port in parse_uri(self._uri())["nodelist"])
        except Exception:
            return "the configured host"

    def location(self) -> str:
        return f"MongoDB at {self._hosts()}, database {self.database}"

    def _fail(self, error: Exception, doing: str) -> StoreError:
        """A StoreError that names the host and never the credentials of the connection string."""
        message = str(error)
        try:
            uri = self._uri()
        except StoreError:
            uri = ""
        for secret in _credentials(uri):
            message = message.replace(secret, "***")
        return StoreError(
            f"MongoDB at {self._hosts()} (database {self.database}): {doing} failed: "
            f"{type(error).__name__}: {message[:500]}"
        )

    def _client(self) -> pymongo.MongoClient:
        """One client per connection string and process: clients pool connections themselves."""
        uri = self._uri()
        with _clients_lock:
            if uri not in _clients:
                _clients[uri] = pymongo.MongoClient(
                    uri, serverSelectionTimeoutMS=self.server_selection_timeout_ms, tz_aware=False
                )
            return _clients[uri]

    def _db(self):
        db = self._client()[self.database]
        if not self._indexed:
            try:
                migrate(db)
                for table, keys in schema.KEYS.items():
                    db[table].create_index([(key, 1) for key in keys], unique=True)
                    if "date" in schema.TABLES[table] and keys[0] != "date":
                        db[table].create_index([("date", 1)])
            except PyMongoError as error:
                raise self._fail(error, "creating the indexes") from None
            self._indexed = True
        return db

    def _find(self, table: str, query: dict[str, Any], sort: list[tuple[str, int]]) -> pd.DataFrame:
        columns = schema.TABLES[table]
        projection = {"_id": False, **{name: True for name in columns}}
        try:
            documents = list(self._db()[table].find(query, projection).sort(sort))
        except PyMongoError as error:
            raise self._fail(error, f"reading {table}") from None
        return as_frame(documents, columns)

    def read_prices(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._find(schema.PRICES, {"ticker": {"$in": list(tickers)}}, _BY_TICKER)

    def read_indicators(self, tickers: Sequence[str]) -> pd.DataFrame:
        return self._find(schema.INDICATORS, {"ticker": {"$in": list(tickers)}}, _BY_TICKER)

    def read_tail(self, table: str, tickers: Sequence[str], bars: int) -> pd.DataFrame:
        columns = schema.TABLES[table]
        projection = {"_id": False, **{name: True for name in columns}}
        documents: list[dict[str, Any]] = []
        try:
            for ticker in tickers:
                found = self._db()[table].find({"ticker": ticker}, projection)
                documents.extend(reversed(list(found.sort([("date", -1)]).limit(bars))))
        except PyMongoError as error:
            raise self._fail(error, f"reading {table}") from None
        return as_frame(documents, columns)

    def read_breadth_inputs(
        self, tickers: Sequence[str], end: dt.date, start: dt.date | None = None
    ) -> pd.DataFrame:
        dates = {"$lte": bson_date(end), **({"$gte": bson_date(start)} if start else {})}
        query = {"ticker": {"$in": list(tickers)}, "date": dates}
        indicators = self._find(schema.INDICATORS, query, _BY_TICKER)
        prices = self._find(schema.PRICES, query, _BY_TICKER)[["ticker", "date", "volume"]]
        rows = indicators.merge(prices, on=["ticker", "date"], how="inner")
        return rows[list(schema.BREADTH_INPUT_COLUMNS)].reset_index(drop=True)

    def read_previous_closes(self, tickers: Sequence[str], before: dt.date) -> pd.DataFrame:
        match = {"ticker": {"$in": list(tickers)}, "date": {"$lt": bson_date(before)}}
        pipeline = [{"$match": match}, {"$group": {"_id": "$ticker", "date": {"$max": "$date"}}}]
        try:
            last = {g["_id"]: g["date"] for g in self._db()[schema.INDICATORS].aggregate(pipeline)}
            query = {"ticker": {"$in": list(last)}, "date": {"$in": sorted(set(last.values()))}}
            projection = {"_id": False, **dict.fromkeys(PREVIOUS_COLUMNS, True)}
            found = self._db()[schema.INDICATORS].find(query, projection)
            rows = [doc for doc in found if last.get(doc["ticker"]) == doc["date"]]
        except PyMongoError as error:
            raise self._fail(error, "reading indicators") from None
        columns = {name: schema.INDICATOR_COLUMNS[name] for name in PREVIOUS_COLUMNS}
        return as_frame(rows, columns).sort_values("ticker", ignore_index=True)

    def read_breadth_before(self, day: dt.date, group: str = ALL_GROUP) -> pd.Series | None:
        columns = schema.BREADTH_COLUMNS
        projection = {"_id": False, **{name: True for name in columns}}
        query = {"date": {"$lt": bson_date(day)}, "group_name": group}
        try:
            found = self._db()[schema.BREADTH].find_one(query, projection, sort=[("date", -1)])
        except PyMongoError as error:
            raise self._fail(error, "reading breadth") from None
        return None if found is None else as_frame([found], columns).iloc[0]

    def read_breadth_tail(self, before: dt.date, days: int = HIGH_LOW_DAYS) -> pd.DataFrame:
        columns = schema.BREADTH_COLUMNS
        projection = {"_id": False, **{name: True for name in columns}}
        earlier = {"date": {"$lt": bson_date(before)}}
        documents: list[dict[str, Any]] = []
        try:
            breadth = self._db()[schema.BREADTH]
            for group in sorted(breadth.distinct("group_name", earlier)):
                found = breadth.find({**earlier, "group_name": group}, projection)
                documents.extend(reversed(list(found.sort([("date", -1)]).limit(days))))
        except PyMongoError as error:
            raise self._fail(error, "reading breadth") from None
        return as_frame(documents, columns)

    def breadth_stale(self) -> StaleMark:
        try:
            found = self._db()[STALE].find_one({"_id": STALE}) or {}
        except PyMongoError as error:
            raise self._fail(error, "reading the breadth stale mark") from None
        stale_from = found.get("stale_from")
        return StaleMark(stale_from.date() if stale_from else None, int(found.get("version", 0)))

    def bar_span(self, tickers: Sequence[str]) -> tuple[dt.date | None, dt.date | None]:
        pipeline = [
            {"$match": {"ticker": {"$in": list(tickers)}}},
            {"$group": {"_id": None, "first": {"$min": "$date"}, "last": {"$max": "$date"}}},
        ]
        try:
            groups = list(self._db()[schema.INDICATORS].aggregate(pipeline))
        except PyMongoError as error:
            raise self._fail(error, "reading indicators") from None
        if not groups or groups[0]["first"] is None:
            return None, None
        return groups[0]["first"].date(), groups[0]["last"].date()

    def read_breadth_groups(self) -> dict[str, list[str]]:
        try:
            found = list(self._db()[UNIVERSE].find({}))
        except PyMongoError as error:
            raise self._fail(error, "reading the breadth groups") from None
        return {doc["_id"]: sorted(doc.get("tickers", [])) for doc in sorted(found, key=by_id)}

    @contextlib.contextmanager
    def _breadth_steps(self) -> Iterator[BreadthSteps]:
        """No transaction: each step is written on its own (a crash between them leaves the
        mark set, which costs a recomputation, never a stale row)."""
        yield MongoSteps(self)

    def read_breadth(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = ALL_GROUP,
    ) -> pd.DataFrame:
        order = [("group_name", 1), ("date", 1)]
        return self._find(schema.BREADTH, breadth_query(start, end, group), order)

    def read_breadth_members(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        order = [("date", 1), ("group_name", 1), ("event", 1), ("ticker", 1)]
        return self._find(schema.BREADTH_MEMBERS, breadth_query(start, end, group), order)

    def read_breadth_signals(
        self,
        start: dt.date | None = None,
        end: dt.date | None = None,
        group: str | None = None,
    ) -> pd.DataFrame:
        order = [("date", 1), ("group_name", 1), ("signal", 1)]
        return self._find(schema.BREADTH_SIGNALS, breadth_query(start, end, group), order)

    def read_intraday(self, tickers: Sequence[str]) -> pd.DataFrame:
        query = {"ticker": {"$in": list(tickers)}}
        order = [("ticker", 1), ("unit", 1), ("interval", 1), ("ts", 1)]
        return self._find(schema.INTRADAY_PRICES, query, order)

    def read_intraday_latest(self, tickers: Sequence[str]) -> pd.DataFrame:
        series = {"ticker": "$ticker", "unit": "$unit", "interval": "$interval"}
        pipeline = [
            {"$match": {"ticker": {"$in": list(tickers)}}},
            {"$group": {"_id": series, "ts": {"$max": "$ts"}}},
        ]
        try:
            groups = list(self._db()[schema.INTRADAY_PRICES].aggregate(pipeline))
        except PyMongoError as error:
            raise self._fail(error, "reading intraday_prices") from None
        columns = {name: schema.INTRADAY_COLUMNS[name] for name in (*series, "ts")}
        latest = as_frame(({**g["_id"], "ts": g["ts"]} for g in groups), columns)
        return latest.sort_values(list(series), ignore_index=True)

    def read_actions(self, tickers: Sequence[str] | None = None) -> pd.DataFrame:
        query = {} if tickers is None else {"ticker": {"$in": list(tickers)}}
        return self._find(
            schema.CORPORATE_ACTIONS, query, [("ticker", 1), ("ex_date", 1), ("kind", 1)]
        )

    def read_instrument_keys(self, tickers: Sequence[str]) -> pd.DataFrame:
        query = {"ticker": {"$in": list(tickers)}}
        order = [("ticker", 1), ("first_used", 1), ("instrument_key", 1)]
        return self._find(schema.INSTRUMENT_KEYS, query, order)

    def _write(
        self,
        frames: Mapping[str, pd.DataFrame],
        replace: Mapping[str, list[str]],
        mark: dt.date | None,
    ) -> dict[str, int]:
        written: dict[str, int] = {}
        lost: list[str] = []
        if mark is not None:
            # Before the write (there is no transaction): a failed write leaves a mark too
            # early, which costs a recomputation, never a stale row.
            MongoSteps(self).move_mark(mark)
        for table, tickers in replace.items():
            try:
                self._db()[table].delete_many({"ticker": {"$in": list(tickers)}})
            except PyMongoError as error:
                raise self._fail(error, f"writing {table}") from None
        for table, df in frames.items():
            keys = schema.KEYS[table]
            rows = as_documents(df, schema.TABLES[table])
            written[table] = 0
            for start in range(0, len(rows), self.write_chunk_rows):
                chunk = rows[start : start + self.write_chunk_rows]
                operations = [
                    pymongo.ReplaceOne({key: doc[key] for key in keys}, doc, upsert=True)
                    for doc in chunk
                ]
                try:
                    self._db()[table].bulk_write(operations, ordered=False)
                    written[table] += len(chunk)
                except BulkWriteError as error:
                    failed = {e["index"] for e in error.details.get("writeErrors", [])}
                    written[table] += len(chunk) - len(failed)
                    lost += [f"{table} {key_text(chunk[i], keys)}" for i in sorted(failed)]
                except PyMongoError as error:
                    raise self._fail(error, f"writing {table}") from None
        if lost:
            shown = "; ".join(lost[:20]) + (
                f"; and {len(lost) - 20} more" if len(lost) > 20 else ""
            )
            raise StoreError(
                f"MongoDB at {self._hosts()}: {len(lost)} rows were not written ({shown}); the "
                "other rows were, and materializing the partition again writes the rest"
            )
        return written


_BY_TICKER = [("ticker", 1), ("date", 1)]


def _credentials(uri: str) -> list[str]:
    try:
        parsed = parse_uri(uri)
    except Exception:
        return []
    return [secret for secret in (parsed.get("password"), parsed.get("username")) if secret]
