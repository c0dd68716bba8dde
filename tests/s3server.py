"""A real S3-speaking server on loopback for the S3 storage backend: moto's standalone server (``moto[server]``,
installed by `make install`), one process per test module that asks for it.

It speaks the S3 REST API over HTTP like AWS S3 or MinIO, so boto3 runs exactly as in production: signing,
retries, error codes. The process is also what the multi-node test pauses (SIGSTOP) to hold a worker mid-job.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BUCKET = "academy-test"
ACCESS_KEY = "test-access-key"  # moto accepts any credentials; boto3 still signs every request with them
SECRET_KEY = "test-secret-key"  # the loopback test server's, not a secret
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen
    _client: object = field(default=None, repr=False)

    def client(self):
        """A boto3 client for this server, made on first use (each new one loaded botocore's S3 model again:
        ~0.25 s of CPU per call, six calls in tests/servers/test_multi_node.py)."""
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id=ACCESS_KEY,
                aws_secret_access_key=SECRET_KEY,
            )
        return self._client

    def config(self, *, prefix: str = "") -> dict:
        """The app settings that point the storage at this server's bucket."""
        return {
            "STORAGE_BACKEND": "s3",
            "STORAGE_S3_BUCKET": BUCKET,
            "STORAGE_S3_PREFIX": prefix,
            "STORAGE_S3_ENDPOINT_URL": self.endpoint,
            "STORAGE_S3_REGION": REGION,
            "STORAGE_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "STORAGE_S3_SECRET_ACCESS_KEY": SECRET_KEY,
            "STORAGE_S3_ADDRESSING_STYLE": "path",
        }

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` in the bucket, sorted (read past the app, straight from S3)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def get(self, key: str) -> bytes:
        return self.client().get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def s3_server(folder: Path) -> Iterator[S3Server]:
    """Start moto's server on a free loopback port with an empty bucket; stop it afterwards."""
    port = _free_port()
    log = folder / "moto.log"
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.quick_exit", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60  # a loaded machine imports moto's Flask app in a few seconds
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's S3 server did not start on port {port}\n{log.read_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        server = S3Server(f"http://127.0.0.1:{port}", process)
        server.client().create_bucket(Bucket=BUCKET)
        yield server
    finally:
        process.send_signal(signal.SIGCONT)  # a test may have paused it; a stopped process ignores SIGTERM
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
