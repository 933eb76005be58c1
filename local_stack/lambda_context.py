"""The context object Lambda passes a handler, for invocations made on this machine."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

ACCOUNT_ID = "000000000000"


@dataclass
class LocalLambdaContext:
    function_name: str
    timeout_s: float = 30
    memory_limit_in_mb: int = 256
    region: str = "us-east-1"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))
