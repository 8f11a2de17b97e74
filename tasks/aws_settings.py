"""What a run's AWS clients are built from: region, credentials, role, retries and timeouts.

No AWS SDK is imported here: the settings, checked before anything starts, use these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
USER_AGENT = "s3-housekeeping"


@dataclass(frozen=True)
class AwsSettings:
    """Everything needed to build clients; no secret travels in here."""

    region: str
    credentials_block: str | None = None
    role_arn: str | None = None
    role_session_name: str = "s3-housekeeping"
    role_duration_seconds: int = 3600
    max_attempts: int = 3
    retry_mode: Literal["standard", "adaptive"] = "standard"
    max_pool_connections: int = 10
    read_timeout_s: int = READ_TIMEOUT_S
