"""The local stack's own settings: what to run where. The functions keep reading portfolio.settings."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
PUBLIC_PRICES_API_URL = "https://coins.llama.fi"


class LocalStackSettings(BaseSettings):
    """Read from the environment once, at startup."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    port: int = Field(3000, alias="PORT", ge=0, le=65535)
    redis_url: str | None = Field(None, alias="REDIS_URL")
    # The functions' client: a cluster client when true. Without REDIS_URL, true starts a local cluster.
    redis_cluster_mode: bool = Field(False, alias="REDIS_CLUSTER_MODE")
    prices_api_url: str | None = Field(None, alias="PRICES_API_URL")
    offline_prices: bool = Field(False, alias="OFFLINE_PRICES")
    # The functions refuse less than 60 s (portfolio.settings); the local stack follows them.
    refresh_interval_s: int = Field(300, alias="REFRESH_INTERVAL_SECONDS", ge=60)
    demo: bool = Field(False, alias="DEMO")
    data_dir: Path = Field(REPOSITORY_ROOT / ".local", alias="LOCAL_DATA_DIR")
    jwt_secret: SecretStr | None = Field(None, alias="LOCAL_JWT_SECRET")
    aws_region: str = Field("us-east-1", alias="AWS_REGION")
    stage: str = Field("local", alias="STAGE")
    # Wallet sync's nodes: unset (or empty) starts a local one (anvil with chain id 1, a Solana JSON-RPC fake).
    # Secrets: a provider's URL usually carries its key.
    rpc_url_ethereum: SecretStr | None = Field(None, alias="RPC_URL_ETHEREUM")
    rpc_url_solana: SecretStr | None = Field(None, alias="RPC_URL_SOLANA")
    # sam local (local_stack/sam_env.py): the name a Lambda container reaches this machine by, and an
    # address of this machine where the stack's services are also offered (unset: 127.0.0.1 only).
    sam_local_host: str = Field("host.docker.internal", alias="SAM_LOCAL_HOST", pattern=r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
    local_bind_host: IPv4Address | None = Field(None, alias="LOCAL_BIND_HOST")

    @field_validator("local_bind_host", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("local_bind_host")
    @classmethod
    def _another_address_than_the_services(cls, value: IPv4Address | None) -> IPv4Address | None:
        # The services hold 127.0.0.1:<port>; 0.0.0.0:<port> would collide with them on Linux.
        if value is None:
            return None
        if value.is_unspecified or value == IPv4Address("127.0.0.1"):
            raise ValueError("name one address of this machine other than 127.0.0.1, e.g. docker0's 172.17.0.1")
        with socket.socket() as probe:
            try:
                probe.bind((str(value), 0))
            except OSError as error:
                raise ValueError(f"{value} is not an address of this machine ({error.strerror})") from error
        return value

    def origin(self, field_name: str) -> str:
        """'env' when the value came from the environment, 'default' otherwise (for the startup log)."""
        return "env" if field_name in self.model_fields_set else "default"

    @property
    def jwt_secret_value(self) -> str | None:
        return self.jwt_secret.get_secret_value() if self.jwt_secret else None

    def rpc_url(self, chain: str) -> str | None:
        """The node URL given for a chain ("ethereum", "solana"); None when unset or empty."""
        value: SecretStr | None = getattr(self, f"rpc_url_{chain}")
        if value is None:
            return None
        return value.get_secret_value() or None

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir if self.data_dir.is_absolute() else REPOSITORY_ROOT / self.data_dir


def load_settings() -> LocalStackSettings:
    return LocalStackSettings()  # type: ignore[call-arg]
