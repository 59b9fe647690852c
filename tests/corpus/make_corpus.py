#!/usr/bin/env python3
"""Writes the bad-input corpus (tests/corpus/*). Deterministic: run it again and nothing
changes. Expected outcomes live in expected.json next to the files, one entry per file."""
import gzip, io, json, os, sys

HERE = os.path.dirname(os.path.abspath(__file__))
H = "order_id,line_no,sale_date,ship_date,customer_id,sku,store_id,qty,unit_price,card_number,channel"
def row(order="O00001", line=1, sale="2024-01-01", ship="2024-01-02", cust="C1001", sku="P001", store="S01", qty=2, price="1.85", card="", channel="store"):
    return f"{order},{line},{sale},{ship},{cust},{sku},{store},{qty},{price},{card},{channel}"
R1, R2, R3 = row(), row(line=2, sku="P002"), row(order="O00002", cust="C1002")
CH = "customer_id,first_name,last_name,email,phone,dob,postcode,city,segment,tier,updated_at"
def crow(cid="C1001", email="ann@example.com", updated="2024-01-01T08:00:00", first="Ann"):
    return f"{cid},{first},Lee,{email},07700 900101,14/03/1985,LS1 4AP,Leeds,consumer,gold,{updated}"

files = {}
def text(name, content, encoding="utf-8"):
    files[name] = content.encode(encoding) if isinstance(content, str) else content

text("sales_bom.csv", "\ufeff" + "\n".join([H, R1, R2]) + "\n")
text("sales_crlf.csv", "\r\n".join([H, R1, R2]) + "\r\n")
text("sales_mixed_line_ends.csv", H + "\r\n" + R1 + "\n" + R2 + "\r\n" + R3 + "\n")
text("sales_semicolon.csv", "\n".join(l.replace(",", ";") for l in [H, R1, R2]) + "\n")
text("sales_tab.csv", "\n".join(l.replace(",", "\t") for l in [H, R1, R2]) + "\n")
text("sales_quoted_delimiter.csv", "\n".join([H, row(card='"4111,1111"'), row(line=2, card='"x,y,z"')]) + "\n")
text("sales_quoted_newline.csv", "\n".join([H, row(card='"4111\n1111"'), R2]) + "\n")
text("sales_unterminated_quote.csv", "\n".join([H, R1, row(line=2, card='"4111')]) + "\n")
text("sales_ragged_rows.csv", "\n".join([H, R1, "O00001,2,2024-01-01", row(line=3) + ",extra,fields"]) + "\n")
text("sales_duplicate_header.csv", "\n".join([H + ",channel", R1 + ",web"]) + "\n")
text("sales_blank_header.csv", "\n".join([H + ",", R1 + ",x", R2 + ","]) + "\n")
text("sales_header_case_and_spacing.csv", "\n".join(["Order_ID, LINE NO ,Sale-Date,ship date,CUSTOMER_ID,SKU,Store Id,QTY,Unit Price,Card_Number,Channel", R1, R2]) + "\n")
text("customers_windows1252.csv", "\n".join([CH, crow(first="Ren\u00e9e")]) + "\n", "cp1252")
text("sales_invalid_utf8.csv", ("\n".join([H, R1]) + "\n").encode() + row(line=2, card="41\xff").encode("latin-1") + b"\n")
text("sales_nul_bytes.csv", ("\n".join([H, R1, row(line=2, card="41\x0011")]) + "\n"))
text("sales_enormous_field.csv", "\n".join([H, R1, row(line=2, channel="w" * 1_100_000)]) + "\n")
text("sales_thousands_of_columns.csv", "\n".join([H + "," + ",".join(f"extra_{i}" for i in range(3000)), R1 + "," * 3000]) + "\n")
text("sales_empty.csv", "")
text("sales_header_only.csv", H + "\n")
gz = gzip.compress(("\n".join([H] + [row(order=f"O{i:05d}") for i in range(1, 400)]) + "\n").encode(), mtime=0)
text("sales_truncated.csv.gz", gz[: len(gz) // 2])
text("sales_gzip.csv.gz", gzip.compress(("\n".join([H, R1, R2]) + "\n").encode(), mtime=0))
text("sales_thousands_separator.csv", "\n".join([H, row(qty='"1,000"'), row(line=2, price='"1,234.50"'), R3]) + "\n")
text("products_thousands_separator.csv", "product_id,product_name,category,unit_price\nP001,Tea,grocery,\"1,234.50\"\nP002,Kettle,household,\"12,34.50\"\nP003,Cable,electronics,999.99\n")
text("sales_mixed_date_formats.csv", "\n".join([H, R1, row(line=2, sale="01/02/2024", ship="01/02/2024"), row(line=3, sale="2024-1-5", ship="2024-01-06")]) + "\n")
text("customers_dst_changes.csv", "\n".join([CH, crow("C1001", updated="2024-03-31T01:30:00"), crow("C1002", "b@example.com", "2024-10-27T01:30:00"), crow("C1003", "c@example.com", "2024-06-01T12:00:00")]) + "\n")
text("sales_leap_days.csv", "\n".join([H, row(sale="2024-02-29", ship="2024-03-01"), row(line=2, sale="2023-02-29", ship="2023-03-01")]) + "\n")
text("sales_rule_ship_before_sale.csv", "\n".join([H, R1, row(line=2, sale="2024-01-05", ship="2024-01-04")]) + "\n")
text("sales_duplicate_keys.csv", "\n".join([H, R1, row(qty=5), R2]) + "\n")
text("sales_missing_required_column.csv", "\n".join([",".join(c for c in H.split(",") if c != "customer_id"), "O00001,1,2024-01-01,2024-01-02,P001,S01,2,1.85,,store"]) + "\n")
text("sales_out_of_range.csv", "\n".join([H, row(qty=0), row(line=2, qty=1001), row(line=3, price="-1.00"), R3]) + "\n")
text("sales_regex_mismatch.csv", "\n".join([H, row(order="X1"), R3]) + "\n")
text("sales_decimal_places.csv", "\n".join([H, row(price="1.234"), row(line=2, price="1.2"), R3]) + "\n")
text("sales_nan_and_text_numbers.csv", "\n".join([H, row(price="NaN"), row(line=2, qty="two"), R3]) + "\n")
text("sales_whitespace_padding.csv", "\n".join([H, "  O00001 , 1 ,2024-01-01,2024-01-02, C1001 ,P001,S01, 2 ,1.85,, Store "]) + "\n")
text("sales_blank_lines.csv", "\n".join([H, "", R1, "", "", R2, ""]) + "\n")
text("sales_all_rows_bad.csv", "\n".join([H, row(order="bad"), row(order="bad2", line=0)]) + "\n")
text("customers_bad_emails.csv", "\n".join([CH, crow(), crow("C1002", "not-an-email"), crow("C1003", "a@b@c.com"), crow("C1004", "")]) + "\n")
text("stores_deep_nesting.json", json.dumps([{"id": "S01", "name": "Leeds", "address": {"city": "Leeds", "postcode": "ls1 1aa", "geo": {"a": {"b": {"c": {"d": [1, 2, {"e": None}]}}}}}, "opened": "2019-05-01", "size": {"floor_area_m2": 1200}, "manager_email": "m@example.com"},
                                          {"id": "S02", "name": "York", "address": {"city": 42, "postcode": None}, "opened": "2020-01-01", "size": {"floor_area_m2": "big"}, "manager_email": ["x"]}]))
text("stores_ndjson.json", "\n".join(json.dumps(o) for o in [{"id": "S01", "name": "Leeds", "opened": "2019-05-01"}, {"id": "S02", "name": "York", "opened": "2020-01-01"}]) + "\n")
text("stores_broken.json", '[{"id": "S01", "name": "Leeds"}, {"id": "S02", "name": ')
text("stores_not_objects.json", '[1, "two", null, {"id": "S03", "name": "Hull"}]')
text("unknown_dataset.csv", "a,b\n1,2\n")

try:
    import pyarrow as pa, pyarrow.parquet as pq
    buf = io.BytesIO()
    cols = H.split(",")
    values = [v.split(",") for v in [R1, R2]]
    table = pa.table({c: [v[i] for v in values] for i, c in enumerate(cols)})
    pq.write_table(table, buf, compression="NONE")
    text("sales_parquet_named_csv.csv", buf.getvalue())
except ImportError:
    sys.stderr.write("pyarrow missing: sales_parquet_named_csv.csv left as it is\n")

for name, content in files.items():
    with open(os.path.join(HERE, name), "wb") as out:
        out.write(content)
print(f"{len(files)} files")
