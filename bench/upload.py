"""Upload a dump folder to S3 with boto3's managed transfer: the 'dump locally, then upload' baseline."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3


def main() -> None:
    folder, url, endpoint, region = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    client = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    files = [p for p in folder.rglob("*") if p.is_file()]
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(lambda p: client.upload_file(str(p), bucket, f"{prefix}/{p.relative_to(folder)}"), files)
        )


if __name__ == "__main__":
    main()
