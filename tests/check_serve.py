"""The lake through `lakestar serve`, as analysts' tools read it: pyarrow's S3 filesystem and
dataset discovery (Hive partitions) and boto3. Usage: check_serve.py ENDPOINT ACCESS SECRET."""

import sys

import boto3
import botocore
import pyarrow.dataset as ds
from pyarrow import fs

endpoint, access, secret = sys.argv[1:4]
s3 = fs.S3FileSystem(endpoint_override=endpoint, access_key=access, secret_key=secret, scheme="http", region="us-east-1")

# A folder-like key is not an object: S3 answers 404, and dataset discovery walks it.
info = s3.get_file_info("lakestar-lake/curated/fact_sales")
assert info.type == fs.FileType.Directory, info
facts = ds.dataset("lakestar-lake/curated/fact_sales", filesystem=s3, format="parquet", partitioning="hive")
table = facts.to_table()
assert table.num_rows == 11, table.num_rows
assert "sale_date_month" in table.schema.names, table.schema.names

client = boto3.client(
    "s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret, region_name="us-east-1"
)
try:
    client.head_object(Bucket="lakestar-lake", Key="curated/fact_sales")
    raise AssertionError("a folder-like key answered as an object")
except botocore.exceptions.ClientError as error:
    assert error.response["Error"]["Code"] in ("404", "NoSuchKey"), error.response
listed = client.list_objects_v2(Bucket="lakestar-lake", Prefix="curated/dim_customer/")
assert listed["KeyCount"] == 3, listed["KeyCount"]
print("pyarrow and boto3 read the lake:", table.num_rows, "facts")
