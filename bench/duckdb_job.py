"""The benchmark's reference: the same job as Lakestar's ingest → validate → mask on the
generated sales CSV, in DuckDB. Reads the CSV as text, applies the sales contract's checks,
de-duplicates the natural key (last row wins), masks the card number, and writes the valid
rows and the rejects (with their reasons) to Parquet. Prints seconds and peak RSS as JSON.

usage: python3 duckdb_job.py SALES.csv OUT_DIR THREADS
"""

import json
import resource
import sys
import time

import duckdb

JOB = r"""
CREATE TEMP TABLE source AS
SELECT row_number() OVER () + 1 AS _source_line, *
FROM read_csv('{csv}', all_varchar = true, header = true, store_rejects = true);

CREATE TEMP TABLE typed AS
SELECT
    _source_line,
    nullif(trim(order_id), '') AS order_id,
    try_cast(nullif(trim(line_no), '') AS BIGINT) AS line,
    try_cast(nullif(trim(sale_date), '') AS DATE) AS sale_date,
    try_cast(nullif(trim(ship_date), '') AS DATE) AS ship_date,
    nullif(trim(customer_id), '') AS customer_id,
    nullif(trim(sku), '') AS product_id,
    nullif(trim(store_id), '') AS store_id,
    try_cast(nullif(trim(qty), '') AS BIGINT) AS quantity,
    try_cast(nullif(trim(unit_price), '') AS DECIMAL(10, 2)) AS unit_price,
    nullif(trim(card_number), '') AS card_number,
    lower(nullif(trim(channel), '')) AS channel,
    line_no AS raw_line_no, sale_date AS raw_sale_date, ship_date AS raw_ship_date, qty AS raw_qty, unit_price AS raw_unit_price
FROM source;

CREATE TEMP TABLE checked AS
SELECT *,
    concat_ws('; ',
        CASE WHEN order_id IS NULL THEN 'order_id:required' WHEN NOT regexp_full_match(order_id, 'O[0-9]{{5,9}}') THEN 'order_id:regex' END,
        CASE WHEN raw_line_no IS NULL OR trim(raw_line_no) = '' THEN 'line:required' WHEN line IS NULL THEN 'line:type(integer)' WHEN line < 1 THEN 'line:min(1)' END,
        CASE WHEN raw_sale_date IS NULL OR trim(raw_sale_date) = '' THEN 'sale_date:required' WHEN sale_date IS NULL THEN 'sale_date:type(date)' WHEN sale_date < DATE '2020-01-01' THEN 'sale_date:min(2020-01-01)' END,
        CASE WHEN ship_date IS NULL AND raw_ship_date IS NOT NULL AND trim(raw_ship_date) <> '' THEN 'ship_date:type(date)' END,
        CASE WHEN customer_id IS NULL THEN 'customer_id:required' END,
        CASE WHEN product_id IS NULL THEN 'product_id:required' END,
        CASE WHEN store_id IS NULL THEN 'store_id:required' END,
        CASE WHEN raw_qty IS NULL OR trim(raw_qty) = '' THEN 'quantity:required' WHEN quantity IS NULL THEN 'quantity:type(integer)' WHEN quantity < 1 THEN 'quantity:min(1)' WHEN quantity > 1000 THEN 'quantity:max(1000)' END,
        CASE WHEN raw_unit_price IS NULL OR trim(raw_unit_price) = '' THEN 'unit_price:required' WHEN unit_price IS NULL THEN 'unit_price:type(decimal(10,2))' WHEN unit_price < 0 THEN 'unit_price:min(0)' END,
        CASE WHEN channel IS NOT NULL AND channel NOT IN ('store', 'web') THEN 'channel:allowed' END,
        CASE WHEN ship_date < sale_date THEN 'ship_after_sale' END,
        CASE WHEN order_id IS NOT NULL AND line IS NOT NULL
              AND row_number() OVER (PARTITION BY order_id, line ORDER BY _source_line DESC) > 1 THEN 'duplicate' END
    ) AS _reasons
FROM typed;

COPY (
    SELECT order_id, line, sale_date, ship_date, customer_id, product_id, store_id, quantity, unit_price,
           CASE WHEN card_number IS NULL THEN NULL
                ELSE repeat('*', greatest(length(replace(replace(card_number, ' ', ''), '-', '')) - 4, 0))
                     || right(replace(replace(card_number, ' ', ''), '-', ''), 4) END AS card_number,
           channel, _source_line
    FROM checked WHERE _reasons = ''
) TO '{out}/valid.parquet' (FORMAT parquet, COMPRESSION zstd);

COPY (SELECT * FROM checked WHERE _reasons <> '') TO '{out}/rejected.parquet' (FORMAT parquet, COMPRESSION zstd);
"""


def main() -> None:
    csv, out, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    connection = duckdb.connect(config={"threads": threads, "preserve_insertion_order": True})
    started = time.perf_counter()
    connection.execute(JOB.format(csv=csv, out=out))
    seconds = time.perf_counter() - started
    valid = connection.execute(f"SELECT count(*) FROM '{out}/valid.parquet'").fetchone()[0]
    rejected = connection.execute(f"SELECT count(*) FROM '{out}/rejected.parquet'").fetchone()[0]
    parse_rejects = connection.execute("SELECT count(*) FROM reject_errors").fetchone()[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_rss_bytes": peak, "valid": valid, "rejected": rejected + parse_rejects, "threads": threads}))


if __name__ == "__main__":
    main()
