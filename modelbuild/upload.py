"""`make model-upload`: every built version under OUT to ``s3://bucket/prefix/<version>/``, for ``modelS3Uri``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config.placement import S3_ALLOWED, S3Location
from modelbuild.options import DEFAULT_OUT, ModelBuildError, invalid


def built_versions(out: Path) -> list[Path]:
    """Version folders holding a SavedModel, as TF Serving finds them."""
    if not out.is_dir():
        return []
    return sorted(
        (child for child in out.iterdir() if child.name.isdigit() and (child / "saved_model.pb").is_file()),
        key=lambda child: int(child.name),
    )


def upload(out: Path, location: S3Location, s3: Any) -> list[str]:
    """Uploads each file of each version; returns the object keys written."""
    keys = []
    for version in built_versions(out):
        for path in sorted(p for p in version.rglob("*") if p.is_file()):
            key = f"{location.prefix}/{path.relative_to(out).as_posix()}"
            s3.upload_file(str(path), location.bucket, key)
            keys.append(key)
    return keys


def upload_command(*, s3: str, out: str, client: Any = None) -> str:
    location = S3Location.parse(s3.strip())
    if location is None:
        raise invalid("S3", s3, S3_ALLOWED)
    folder = Path(out).expanduser().resolve() if out.strip() else DEFAULT_OUT
    if not built_versions(folder):
        raise invalid("OUT", folder, "no <version>/saved_model.pb there: run make model first")
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    from client.endpoint import aws_session  # noqa: PLC0415

    try:
        keys = upload(folder, location, client or aws_session().client("s3"))
    except (BotoCoreError, ClientError) as error:
        raise ModelBuildError(f"Upload to {location.uri} failed: {error}") from None
    return f"Uploaded {len(keys)} files to {location.uri}/: deploy with -c modelS3Uri={location.uri}"
