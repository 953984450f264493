"""Each table's column schema for the Dagster UI, from `breadth_assets.schema`."""

from __future__ import annotations

import dagster as dg

from breadth_assets import schema

OWNERS = ["team:breadth"]


def column_schema(table: str, store_kind: str = "duckdb") -> dg.TableSchema:
    """The table's columns with their types (as the store declares them) and descriptions; keys
    are not nullable."""
    descriptions = schema.COLUMN_DESCRIPTIONS[table]
    keys = schema.KEYS[table]
    types = schema.POSTGRES_TYPES if store_kind == "postgres" else None
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=types[sql_type] if types else sql_type,
                description=descriptions[name],
                constraints=dg.TableColumnConstraints(nullable=name not in keys),
            )
            for name, sql_type in schema.TABLES[table].items()
        ],
        constraints=dg.TableConstraints(other=[f"unique ({', '.join(keys)})"]),
    )


def table_metadata(table: str, store_kind: str = "duckdb") -> dict[str, object]:
    """Definition metadata of the asset that writes `table`: its name and column schema."""
    return {"table": table, "dagster/column_schema": column_schema(table, store_kind)}


def table_asset_args(table: str, store_kind: str) -> dict[str, object]:
    """What every asset of the project says about itself: its group, store, table and owners."""
    return {
        "group_name": "market",
        "kinds": {store_kind},
        "metadata": table_metadata(table, store_kind),
        "owners": OWNERS,
    }
