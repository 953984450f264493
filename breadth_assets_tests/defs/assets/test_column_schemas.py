from __future__ import annotations

import dagster as dg
import pytest

from breadth_assets import schema
from breadth_assets.definitions import defs

TABLE_OF = {"raw_prices": schema.PRICES, "indicators": schema.INDICATORS, "breadth": schema.BREADTH}


@pytest.mark.parametrize("asset", sorted(TABLE_OF))
def test_each_asset_shows_its_tables_columns_types_and_descriptions(asset):
    node = defs().resolve_asset_graph().get(dg.AssetKey(asset))
    columns = node.metadata["dagster/column_schema"].columns
    table = TABLE_OF[asset]
    assert [(c.name, c.type) for c in columns] == list(schema.TABLES[table].items())
    assert all(c.description for c in columns)
    assert [c.name for c in columns if not c.constraints.nullable] == list(schema.KEYS[table])


def test_every_column_has_exactly_one_description():
    for table, columns in schema.TABLES.items():
        assert set(schema.COLUMN_DESCRIPTIONS[table]) == set(columns)


@pytest.mark.parametrize("asset", sorted(TABLE_OF))
def test_each_asset_has_an_owner_a_group_and_a_description(asset):
    node = defs().resolve_asset_graph().get(dg.AssetKey(asset))
    assert node.owners == ["team:breadth"]
    assert node.group_name == "market"
    assert node.description


def test_the_postgres_store_shows_its_own_sql_types():
    from breadth_assets.defs.assets.column_schemas import column_schema

    columns = column_schema(schema.INTRADAY_PRICES, "postgres").columns
    assert [(c.name, c.type) for c in columns] == [
        ("ticker", "TEXT"),
        ("ts", "TIMESTAMP"),
        ("unit", "TEXT"),
        ("interval", "BIGINT"),
        *((name, "DOUBLE PRECISION") for name in ("open", "high", "low", "close", "volume")),
    ]
