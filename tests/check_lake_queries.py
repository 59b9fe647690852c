"""DuckDB over the curated folder of an offline run, with the queries docs/querying.md gives
(each must appear there verbatim): a dimension's current state equals the warehouse's
`<dim>_current` for the members the lake has, all facts (each fact's latest delivery) equal
the warehouse's facts, and the columns come back with their native types. With an S3
endpoint (`lakestar serve`'s), the same queries over S3 (DuckDB's httpfs, from the
duckdb-extension-httpfs wheel) give the same rows.

Usage: python3 tests/check_lake_queries.py HOME [ENDPOINT]
(HOME: the --home of `lakestar run examples/retail`; ENDPOINT: e.g. 127.0.0.1:9000)."""

import decimal
import os
import pathlib
import sqlite3
import sys

import duckdb

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "querying.md"

CURRENT_CUSTOMERS = """SELECT * EXCLUDE (latest) FROM (
  SELECT *, row_number() OVER (
    PARTITION BY customer_id ORDER BY updated_at DESC, _ingested_at DESC, _source_line DESC) AS latest
  FROM read_parquet('curated/dim_customer/*/*.parquet', hive_partitioning = true)
) WHERE latest = 1"""

CURRENT_PRODUCTS = """SELECT * EXCLUDE (latest) FROM (
  SELECT *, row_number() OVER (
    PARTITION BY product_id ORDER BY _ingested_at DESC, _source_line DESC) AS latest
  FROM read_parquet('curated/dim_product/*/*.parquet', hive_partitioning = true)
) WHERE latest = 1"""

ALL_SALES = """SELECT * EXCLUDE (latest) FROM (
  SELECT *, row_number() OVER (
    PARTITION BY order_id, line ORDER BY _ingested_at DESC, _source_line DESC) AS latest
  FROM read_parquet('curated/fact_sales/*/*/*.parquet', hive_partitioning = true)
) WHERE latest = 1"""


def text(value) -> str:
    """A value as text, numbers to four places (SQLite keeps decimals as floats)."""
    if isinstance(value, (int, float, decimal.Decimal)) and not isinstance(value, bool):
        return f"{float(value):.4f}"
    return str(value)


def main() -> None:
    home = pathlib.Path(sys.argv[1])
    docs = DOCS.read_text()
    for query in (CURRENT_CUSTOMERS, CURRENT_PRODUCTS, ALL_SALES):
        assert query in docs, f"docs/querying.md shows the query the check runs:\n{query}"
    os.chdir(home / "s3" / "lakestar-lake")
    lake = duckdb.connect()
    warehouse = sqlite3.connect(home / "warehouse.db")

    # A dimension's current state: the warehouse's current version of each member the lake has.
    for query, table, key, columns in (
        (CURRENT_CUSTOMERS, "dim_customer", "customer_id", ["city", "segment", "loyalty_tier", "email"]),
        (CURRENT_PRODUCTS, "dim_product", "product_id", ["product_name", "category", "unit_price"]),
    ):
        selected = ", ".join([key] + columns)
        from_lake = lake.sql(f"SELECT {selected} FROM ({query}) ORDER BY {key}").fetchall()
        keys = [row[0] for row in from_lake]
        marks = ", ".join("?" for _ in keys)
        from_warehouse = warehouse.execute(
            f"SELECT {selected} FROM {table}_current WHERE {key} IN ({marks}) ORDER BY {key}", keys
        ).fetchall()
        normalise = lambda rows: [tuple(text(value) for value in row) for row in rows]
        assert len(from_lake) > 0, f"{table}: the lake has members"
        assert normalise(from_lake) == normalise(from_warehouse), (
            f"{table}: the lake's current state differs from {table}_current:\n{from_lake}\n{from_warehouse}"
        )
        print(f"{table}: {len(from_lake)} current members, as in {table}_current")

    # All facts: each fact once, from its latest delivery, as the warehouse holds them.
    lake_sales = lake.sql(
        f"SELECT COUNT(*), SUM(quantity), CAST(SUM(quantity * unit_price) AS DECIMAL(18, 2)) FROM ({ALL_SALES})"
    ).fetchall()[0]
    warehouse_sales = warehouse.execute(
        "SELECT COUNT(*), SUM(quantity), printf('%.2f', SUM(quantity * unit_price)) FROM fact_sales"
    ).fetchone()
    assert tuple(str(value) for value in lake_sales) == tuple(str(value) for value in warehouse_sales), (
        f"all facts: the lake has {lake_sales}, the warehouse {warehouse_sales}"
    )
    print(f"fact_sales: {lake_sales[0]} facts, {lake_sales[1]} units, as in the warehouse")

    # Native types, the Hive partitions as columns.
    types = dict(lake.sql(f"SELECT column_name, column_type FROM (DESCRIBE {ALL_SALES})").fetchall())
    expected = {
        "sale_date": "DATE",
        "line": "BIGINT",
        "unit_price": "DECIMAL(10,2)",
        "_ingested_at": "TIMESTAMP WITH TIME ZONE",
        "sale_date_month": "VARCHAR",
        "run": "VARCHAR",
    }
    for column, column_type in expected.items():
        assert types.get(column) == column_type, f"fact_sales.{column} is {types.get(column)}, expected {column_type}"
    print("native types: " + ", ".join(f"{column} {types[column]}" for column in expected))

    if len(sys.argv) > 2:
        over_s3(lake, sys.argv[2])


def over_s3(lake, endpoint: str) -> None:
    """The same queries over the S3 endpoint give the same rows as over the folder."""
    import duckdb_extension_httpfs

    extension = pathlib.Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    (path,) = extension.glob(f"v{duckdb.__version__}/httpfs.duckdb_extension")
    remote = duckdb.connect()
    remote.sql(f"LOAD '{path}'")
    remote.sql(
        "CREATE SECRET lake (TYPE s3, KEY_ID 'lakestar', SECRET 'lakestar-local-secret', REGION 'us-east-1', "
        f"ENDPOINT '{endpoint}', URL_STYLE 'path', USE_SSL false)"
    )
    for query in (CURRENT_CUSTOMERS, CURRENT_PRODUCTS, ALL_SALES):
        over = query.replace("read_parquet('curated/", "read_parquet('s3://lakestar-lake/curated/")
        order = "ORDER BY ALL"
        local_rows = lake.sql(f"SELECT * EXCLUDE (run) FROM ({query}) {order}").fetchall()
        remote_rows = remote.sql(f"SELECT * EXCLUDE (run) FROM ({over}) {order}").fetchall()
        assert local_rows and local_rows == remote_rows, f"over S3 the rows differ:\n{over}"
    print(f"over S3 at {endpoint}: the same rows for the three queries")


if __name__ == "__main__":
    main()
