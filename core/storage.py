"""Files written at run time (certificate PDFs and their previews, lesson images) behind one small interface.

Two backends, chosen by ``STORAGE_BACKEND``:

- ``local`` (default): one folder per area on this machine (``CERTIFICATE_DIR``, ``UPLOAD_DIR``, or
  ``instance/<area>``). Fine for one server; a second server on another machine would not see the files.
- ``s3``: one S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...) through boto3, keys ``<prefix><area>/<key>``.
  Every app server and worker reads and writes the same objects, so an app node keeps nothing of its own and
  any node serves what another wrote.

Callers name objects by what they hold (a certificate's public id, an image's sha256), so writing the same
thing twice (a retried job, two servers racing) replaces one object instead of adding a second. A write is
atomic: a reader sees the old bytes or the new ones, never part of them. Every failure is an ``OSError``
(``FileNotFoundError`` for a missing object), whichever backend, so callers handle one kind of error.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Protocol

from flask import Flask, current_app

AREAS = {"certificates": "CERTIFICATE_DIR", "uploads": "UPLOAD_DIR"}
KEY_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")  # one flat name: no folders, no '..', no hidden files


class StorageError(OSError):
    """The storage backend failed (unreachable, refused, misconfigured)."""


class Storage(Protocol):
    """One area of storage (e.g. ``certificates``). Keys are plain file names (``KEY_RE``)."""

    def read(self, key: str) -> bytes:
        """The object's bytes. Raises FileNotFoundError if there is none, OSError if the backend fails."""
        ...

    def write(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        """Store ``data`` under ``key`` atomically, replacing any earlier object. Raises OSError."""
        ...

    def exists(self, key: str) -> bool:
        """Whether the object is there. Raises OSError if the backend fails."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error. Raises OSError."""
        ...

    def names(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted. Raises OSError."""
        ...

    def describe(self) -> str:
        """Where the objects live, for messages to operators."""
        ...


def check_key(key: str) -> str:
    """The key itself, or ValueError: callers build keys from ids and hashes, so a bad one is a bug."""
    if not KEY_RE.fullmatch(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    """A folder on this machine; created on the first write."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def read(self, key: str) -> bytes:
        path = self.folder / check_key(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise
        except OSError as error:
            raise StorageError(f"cannot read {path}: {error}") from error

    def write(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        target = self.folder / check_key(key)
        # a name of its own per writer: two threads or servers writing the same key never share a temp file
        temporary = self.folder / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            temporary.write_bytes(data)
            temporary.replace(target)
        except OSError as error:
            with contextlib.suppress(OSError):
                temporary.unlink(missing_ok=True)
            raise StorageError(f"cannot write {target}: {error}") from error

    def exists(self, key: str) -> bool:
        return (self.folder / check_key(key)).is_file()

    def delete(self, key: str) -> None:
        path = self.folder / check_key(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as error:
            raise StorageError(f"cannot delete {path}: {error}") from error

    def names(self, prefix: str = "") -> list[str]:
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StorageError(f"cannot list {self.folder}: {error}") from error
        return sorted(n for n in names if n.startswith(prefix) and KEY_RE.fullmatch(n))

    def describe(self) -> str:
        return str(self.folder)


class S3Storage:
    """One area of an S3-compatible bucket: objects ``<prefix><area>/<key>``."""

    def __init__(self, client, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def _call(self, method: str, key: str | None, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(Bucket=self.bucket, **kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise FileNotFoundError(f"s3://{self.bucket}/{self.prefix}{key or ''}") from None
            raise StorageError(f"S3 {method} on bucket {self.bucket!r} failed: {error}") from error
        except BotoCoreError as error:  # endpoint unreachable, timeouts, bad credentials configuration
            raise StorageError(f"S3 {method} on bucket {self.bucket!r} failed: {error}") from error

    def read(self, key: str) -> bytes:
        response = self._call("get_object", key, Key=self.prefix + check_key(key))
        try:
            return response["Body"].read()
        except Exception as error:  # the connection broke mid-body (botocore and urllib3 errors alike)
            raise StorageError(f"S3 read of {key!r} broke off: {error}") from error

    def write(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        # one PUT: S3 makes an object visible only once all of it arrived, so readers never see part of it
        self._call("put_object", key, Key=self.prefix + check_key(key), Body=data, ContentType=content_type)

    def exists(self, key: str) -> bool:
        try:
            self._call("head_object", key, Key=self.prefix + check_key(key))
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete_object", key, Key=self.prefix + check_key(key))

    def names(self, prefix: str = "") -> list[str]:
        found: list[str] = []
        token = None
        while True:
            extra = {"ContinuationToken": token} if token else {}
            page = self._call("list_objects_v2", None, Prefix=self.prefix + prefix, **extra)
            found.extend(item["Key"][len(self.prefix) :] for item in page.get("Contents", []))
            if not page.get("IsTruncated"):
                return sorted(found)
            token = page["NextContinuationToken"]

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


class _Clients:
    """One boto3 client per process and configuration: building one costs ~50 ms, and a client is thread-safe
    but must not cross a fork (gunicorn and Huey fork workers; the connection pool would be shared)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple, object] = {}

    def get(self, config) -> object:
        settings = (
            os.getpid(),
            config["STORAGE_S3_ENDPOINT_URL"],
            config["STORAGE_S3_REGION"],
            config["STORAGE_S3_ACCESS_KEY_ID"],
            config["STORAGE_S3_SECRET_ACCESS_KEY"],
            config["STORAGE_S3_ADDRESSING_STYLE"],
        )
        client = self._clients.get(settings)
        if client is None:
            with self._lock:
                client = self._clients.get(settings)
                if client is None:
                    client = self._clients[settings] = _new_client(*settings[1:])
        return client


def _new_client(endpoint_url, region, access_key_id, secret_access_key, addressing_style):
    import boto3
    from botocore.config import Config

    # short timeouts and a few retries: a stalled store fails the request or the job (which retries) in
    # seconds instead of holding a web worker for botocore's default minute
    config = Config(
        connect_timeout=5,
        read_timeout=20,
        retries={"max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": addressing_style or "auto"},
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        region_name=region or None,
        # None: boto3's own chain (AWS_* environment, shared files, the instance's or pod's role)
        aws_access_key_id=access_key_id or None,
        aws_secret_access_key=secret_access_key or None,
        config=config,
    )


def storage(area: str, app: Flask | None = None) -> Storage:
    """The storage for ``area`` (``certificates`` or ``uploads``) under the app's configuration.

    Read per call (tests point the folders elsewhere for a while); only the S3 client is kept.
    Raises KeyError for an unknown area.
    """
    app = app or current_app
    config = app.config
    setting = AREAS[area]
    if config["STORAGE_BACKEND"] == "s3":
        return S3Storage(app.extensions["storage"].get(config), config["STORAGE_S3_BUCKET"], s3_prefix(config, area))
    return LocalStorage(Path(config[setting] or Path(app.instance_path) / area))


def s3_prefix(config, area: str) -> str:
    base = (config["STORAGE_S3_PREFIX"] or "").strip("/")
    return f"{base}/{area}/" if base else f"{area}/"


def init_app(app: Flask) -> None:
    """Check the storage settings (the app refuses to start with an incomplete S3 configuration)."""
    from core.config import ConfigError

    backend = app.config["STORAGE_BACKEND"]
    if backend not in {"local", "s3"}:
        raise ConfigError(f"STORAGE_BACKEND must be local or s3, not {backend!r}")
    if backend == "s3" and not app.config["STORAGE_S3_BUCKET"]:
        raise ConfigError("STORAGE_BACKEND is s3: set FLASK_STORAGE_S3_BUCKET to the bucket's name")
    if app.config["STORAGE_S3_ADDRESSING_STYLE"] not in {None, "", "auto", "path", "virtual"}:
        raise ConfigError("STORAGE_S3_ADDRESSING_STYLE must be auto, path or virtual")
    app.extensions["storage"] = _Clients()
    _register_commands(app)


CONTENT_TYPES = {".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp"}


def _register_commands(app: Flask) -> None:
    import click

    @app.cli.group("storage")
    def storage_cli() -> None:
        """Files written at run time (certificate PDFs and previews, lesson images)."""

    @storage_cli.command("copy-local")
    def copy_local() -> None:
        """Copy the local folders' files into the S3 bucket (moving one server to several machines).

        Objects already in the bucket are left as they are (they are named by what they hold), so it can run again.
        """
        if app.config["STORAGE_BACKEND"] != "s3":
            raise click.ClickException(
                "STORAGE_BACKEND is local: set FLASK_STORAGE_BACKEND=s3 and FLASK_STORAGE_S3_BUCKET first"
            )
        for area, setting in AREAS.items():
            local = LocalStorage(Path(app.config[setting] or Path(app.instance_path) / area))
            target = storage(area, app)
            try:
                there = set(target.names())
                copied = 0
                todo = [key for key in local.names() if key not in there]
                for key in todo:
                    kind = CONTENT_TYPES.get(os.path.splitext(key)[1], "application/octet-stream")
                    target.write(key, local.read(key), content_type=kind)
                    copied += 1
            except OSError as error:
                raise click.ClickException(f"{area}: {error}") from None
            click.echo(
                f"{area}: {copied} copied, {len(local.names()) - copied} already there "
                f"({local.describe()} → {target.describe()})"
            )
