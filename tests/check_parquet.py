"""Independent proof that other tools read Lakestar's Parquet: pyarrow reads the raw and
quarantine files the integration tests export, and the lake of an offline run."""

import pathlib
import sys

import pyarrow as pa
import pyarrow.parquet as pq

LINEAGE = ["_source_key", "_source_line", "_run_id", "_ingested_at"]


def check_raw(path: pathlib.Path) -> int:
    table = pq.read_table(path)
    names = table.schema.names
    assert names[-4:] == LINEAGE, f"{path}: lineage columns last, got {names}"
    for field in table.schema:
        if field.name not in LINEAGE:
            assert field.type == pa.string(), f"{path}: {field.name} is {field.type}, raw columns are text"
    assert table.schema.field("_source_line").type == pa.int64()
    assert table.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC")
    lines = table.column("_source_line").to_pylist()
    assert lines == sorted(lines) and len(set(lines)) == len(lines), f"{path}: source lines ascend"
    return table.num_rows


def main() -> None:
    exported = pathlib.Path(sys.argv[1])
    raw = check_raw(exported / "raw_customers.parquet")
    assert raw == 11, f"the example's customers file has 11 parseable rows, pyarrow read {raw}"
    rejected = pq.read_table(exported / "ingest_rejected_customers.parquet").to_pylist()
    assert [row["_source_line"] for row in rejected] == [9], rejected
    assert rejected[0]["_reasons"].startswith("parse:field_count"), rejected
    print(f"pyarrow: exported raw file ok ({raw} rows), quarantine ok ({len(rejected)} row)")

    processed = pq.read_table(exported / "processed_customers.parquet")
    schema = processed.schema
    assert schema.field("date_of_birth").type == pa.date32(), schema
    assert schema.field("updated_at").type == pa.timestamp("us", tz="UTC"), schema
    assert schema.field("customer_id").type == pa.string(), schema
    assert schema.names[-4:] == LINEAGE, schema.names
    rows = processed.to_pylist()
    assert len(rows) == 6, len(rows)
    isla = next(row for row in rows if row["customer_id"] == "C1003")
    assert str(isla["date_of_birth"]) == "1992-02-29", isla["date_of_birth"]
    assert isla["updated_at"].isoformat() == "2024-01-01T08:00:00+00:00", isla["updated_at"]
    print(f"pyarrow: exported processed file ok ({len(rows)} rows, date32 and UTC timestamps)")

    curated = pq.read_table(exported / "curated_dim_customer.parquet")
    assert curated.schema.metadata[b"lakestar.masking_key_version"] == b"v1", curated.schema.metadata
    rows = curated.to_pylist()
    assert all(row["first_name"] is None for row in rows), "redacted"
    assert all(row["phone"].startswith("*") for row in rows), "partially revealed"
    assert all("@example." in row["email"] and len(row["email"].split("@")[0]) == 32 for row in rows)
    assert curated.schema.field("date_of_birth").type == pa.int64(), "generalised to year"
    print(f"pyarrow: exported curated dim_customer ok ({len(rows)} rows, masked)")

    if len(sys.argv) > 2:
        lake = pathlib.Path(sys.argv[2])
        files = sorted(lake.glob("raw/**/*.parquet"))
        assert files, f"no raw parts under {lake}"
        rows = sum(check_raw(path) for path in files)
        print(f"pyarrow: {len(files)} raw parts of the offline run ok ({rows} rows)")
        processed = sorted(lake.glob("processed/**/*.parquet"))
        assert processed, f"no processed parts under {lake}"
        valid = sum(pq.read_table(path).num_rows for path in processed)
        rejected = sum(pq.read_table(path).num_rows for path in lake.glob("quarantine/**/*.parquet"))
        assert valid + rejected == rows + sum(
            pq.read_table(path).num_rows for path in lake.glob("quarantine/**/ingest_rejected.parquet")
        ), (valid, rejected, rows)
        print(f"pyarrow: offline run: {valid} processed + {rejected} quarantined rows")
        curated_rows = sum(pq.read_table(path).num_rows for path in lake.glob("curated/**/*.parquet"))
        assert curated_rows == valid, (curated_rows, valid)
        print(f"pyarrow: offline run: {curated_rows} curated rows")


if __name__ == "__main__":
    main()
