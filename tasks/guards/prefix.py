"""A prefix that is not a folder ("tmp") and matches several ("tmp/", "tmp-keep/"): a note in
the report, or a refusal before anything is listed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tasks.errors import SafetyRefusal, shown_text, translated_aws_errors
from tasks.s3.folders import PLACES_SHOWN, places_matched
from tasks.settings import RunSettings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)


def check_prefix(s3: S3Client, settings: RunSettings, owner: str | None) -> str | None:
    """For a prefix without a trailing "/": what it matches when that is more than one folder
    (or key outside a folder), as a note; one listing request, none for a folder's prefix.

    Raises:
        SafetyRefusal: it matches several and ambiguous_prefix is "refuse"; nothing was
            listed further, nothing deleted.
    """
    prefix = settings.prefix
    if prefix.endswith("/"):
        return None
    with translated_aws_errors(f"bucket '{settings.bucket}'"):
        places, more = places_matched(s3, settings.bucket, prefix, owner)
    if len(places) < 2:
        return None
    named = ", ".join(shown_text(place) for place in places[:PLACES_SHOWN])
    many = f"more than {PLACES_SHOWN}" if more or len(places) > PLACES_SHOWN else len(places)
    said = (
        f"prefix '{shown_text(prefix)}' has no trailing '/' and matches {many} folders or keys: "
        f"{named}"
    )
    if settings.ambiguous_prefix == "refuse":
        raise SafetyRefusal(
            "ambiguous_prefix", len(places), 1, reason=f"{said} (end it with '/' for one folder)"
        )
    note = f"{said}; all are cleaned (end it with '/' for one folder)"
    logger.info(note)
    return note
