"""`python -m local_stack.two_regions`: the local stack in two (or more) regions of one global table.

- The home region, the first of REGIONS, is `python -m local_stack` as `make dev` runs it: the API,
  the refresh (it runs in the home region only), the stream-driven cache invalidator, and moto's
  server with the template's tables.
- Every other region gets tables of the same names in that region of the same moto server, and
  `python -m local_stack.two_regions_region`: its own API (PORT+1, PORT+2, ...), its own Redis, its
  own cache invalidator on its replica's stream.
- A replicator (local_stack/global_tables.py) copies every write of each replica to the others, as
  global tables do: item by item, last writer wins, the copy appearing on the receiving stream.

Ctrl-C stops everything. Settings: REGIONS (default us-east-1,eu-west-1), PORT (3000, the home
region's), REPLICATION_INTERVAL_SECONDS (0.5); everything else goes to `python -m local_stack` as
`make dev` reads it, and OFFLINE_PRICES, PRICES_API_URL, LOCAL_DATA_DIR, LOCAL_JWT_SECRET and STAGE
to the other regions too (one token works in every region).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO

import httpx
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from local_stack.aws import local_client, physical_names
from local_stack.config import REPOSITORY_ROOT
from local_stack.foreground import run_until_stopped
from local_stack.global_tables import GlobalTableReplicator, ReplicationResult, ReplicatorThread, replicas_of
from local_stack.template_resources import create_tables, load_template, table_resources

HOME_STARTUP_TIMEOUT_S = 300  # the home region installs and starts anvil on its first run
REGION_STARTUP_TIMEOUT_S = 60
# What the home stack prints when it is up: its API, and moto's server every region shares.
READY_LINE = re.compile(r"Local stack ready at (http://\S+)")
MOTO_LINE = re.compile(r"AWS \(moto\)\s+(http://\S+)")
# What another region takes from this process's environment (the rest is the home stack's).
PASSED_TO_REGIONS = ("OFFLINE_PRICES", "PRICES_API_URL", "LOCAL_DATA_DIR", "LOCAL_JWT_SECRET", "STAGE")

Say = Callable[[str], None]


class TwoRegionSettings(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore")

    regions: str = Field("us-east-1,eu-west-1", alias="REGIONS")
    port: int = Field(3000, alias="PORT", ge=1, le=65000)
    replication_interval_s: float = Field(0.5, alias="REPLICATION_INTERVAL_SECONDS", gt=0)
    stage: str = Field("local", alias="STAGE")

    @field_validator("regions")
    @classmethod
    def _two_or_more_distinct(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        if len(names) < 2 or len(set(names)) != len(names):
            raise ValueError("REGIONS names two or more distinct regions, the home region first")
        return ",".join(names)

    @property
    def region_names(self) -> list[str]:
        return self.regions.split(",")


class RegionProcess:
    """`python -m local_stack.two_regions_region` for one region, on `port`; its output to `output`."""

    def __init__(
        self,
        *,
        region: str,
        endpoint: str,
        table_name: str,
        port: int,
        environment: Mapping[str, str],
        output: IO[bytes] | None = None,
    ) -> None:
        self.region = region
        self.url = f"http://127.0.0.1:{port}"
        self._environment = {
            **environment,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "TABLE_NAME": table_name,
            "PORT": str(port),
        }
        self._output = output
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RegionProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local_stack.two_regions_region"],
            cwd=REPOSITORY_ROOT,
            env=self._environment,
            stdout=self._output if self._output is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_until_healthy(self, timeout_s: float = REGION_STARTUP_TIMEOUT_S) -> None:
        """Until its API answers /health 200; RuntimeError if it exits or never does."""
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"region {self.region} exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"region {self.region} did not answer /health in {timeout_s} s")

    def stop(self, timeout_s: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def create_replica_tables(endpoint: str, region: str, stage: str) -> dict[str, str]:
    """The template's tables, named as the local stack names them, in one more region (streams on)."""
    template = load_template()
    tables = physical_names(list(table_resources(template)), stage)
    create_tables(local_client("dynamodb", endpoint, region), tables, template, streams=True)
    return tables


class _PrefixedOutput(threading.Thread):
    """Echoes a child's output line by line, prefixed with its region; tells `on_line` every line."""

    def __init__(self, stream: IO[bytes], prefix: str, say: Say, on_line: Callable[[str], None]) -> None:
        super().__init__(name=f"output-{prefix}", daemon=True)
        self._stream = stream
        self._prefix = prefix
        self._say = say
        self._on_line = on_line

    def run(self) -> None:
        for raw in iter(self._stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            self._say(f"[{self._prefix}] {line}")
            self._on_line(line)


class TwoRegions:
    def __init__(self, settings: TwoRegionSettings, *, say: Say) -> None:
        self.settings = settings
        self._say = say
        self._home: subprocess.Popen[bytes] | None = None
        self._regions: list[RegionProcess] = []
        self._replicators: list[ReplicatorThread] = []

    def start(self) -> None:
        home_region, *other_regions = self.settings.region_names
        home_url, endpoint = self._start_home(home_region)
        table_names: dict[str, str] = {}
        for region in other_regions:
            table_names = create_replica_tables(endpoint, region, self.settings.stage)
        for table_name in table_names.values():
            replicator = ReplicatorThread(
                GlobalTableReplicator(replicas_of(endpoint, table_name, self.settings.region_names)),
                interval_s=self.settings.replication_interval_s,
                on_result=self._log_replication,
                on_error=lambda error: self._say(f"[replication] failed: {type(error).__name__}: {error}"),
            )
            replicator.start()
            self._replicators.append(replicator)
        environment = {name: os.environ[name] for name in PASSED_TO_REGIONS if name in os.environ}
        environment.update(_inherited_environment())
        for offset, region in enumerate(other_regions, start=1):
            process = RegionProcess(
                region=region,
                endpoint=endpoint,
                table_name=table_names["PortfolioTable"],
                port=self.settings.port + offset,
                environment=environment,
            ).start()
            self._regions.append(process)
            assert process.process is not None and process.process.stdout is not None
            _PrefixedOutput(process.process.stdout, region, self._say, lambda _line: None).start()
        for process in self._regions:
            process.wait_until_healthy()
        lines = [
            "",
            f"Global table in {len(self.settings.region_names)} regions (home: {home_region})",
            f"  {home_region:<14} {home_url}  (the whole stack: API, refresh, invalidator; moto at {endpoint})",
            *(f"  {process.region:<14} {process.url}  (API, own Redis, own invalidator)" for process in self._regions),
            f"  replication    every {self.settings.replication_interval_s} s, item by item, last writer wins",
            "",
            f'Write in {home_region}:  curl -X POST -H "Authorization: Bearer $(make -s token USER=alice)" '
            f"-H 'Content-Type: application/json' -d @transaction.json {home_url}/portfolios/alice/transactions",
            f'Read in {self._regions[0].region}:  curl -H "Authorization: Bearer $(make -s token USER=alice)" '
            f"{self._regions[0].url}/portfolios/alice",
            "Stop: Ctrl-C",
            "",
        ]
        self._say("\n".join(lines))

    def stop(self) -> None:
        for process in reversed(self._regions):
            process.stop()
        for replicator in self._replicators:
            replicator.stop()
        if self._home is not None and self._home.poll() is None:
            self._home.send_signal(signal.SIGINT)
            try:
                self._home.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._home.kill()

    def _start_home(self, region: str) -> tuple[str, str]:
        """Start `python -m local_stack` in `region`; its API URL and moto's endpoint once it is up."""
        environment = {**os.environ, "AWS_REGION": region, "PORT": str(self.settings.port)}
        self._home = subprocess.Popen(
            [sys.executable, "-m", "local_stack"],
            cwd=REPOSITORY_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        found: dict[str, str] = {}
        ready = threading.Event()

        def on_line(line: str) -> None:
            for name, pattern in (("url", READY_LINE), ("endpoint", MOTO_LINE)):
                match = pattern.search(line)
                if match:
                    found[name] = match.group(1)
            if len(found) == 2:
                ready.set()

        assert self._home.stdout is not None
        _PrefixedOutput(self._home.stdout, region, self._say, on_line).start()
        deadline = time.monotonic() + HOME_STARTUP_TIMEOUT_S
        while not ready.wait(0.5):
            if self._home.poll() is not None:
                raise RuntimeError(f"the home region's stack exited with {self._home.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the home region's stack was not ready in {HOME_STARTUP_TIMEOUT_S} s")
        return found["url"], found["endpoint"]

    def _log_replication(self, result: ReplicationResult) -> None:
        if result.applied or result.superseded:
            self._say(
                f"[replication] {result.local_writes} write(s) read, {result.applied} applied to other regions"
                + (f", {result.superseded} lost to a later write (last writer wins)" if result.superseded else "")
            )


def _inherited_environment() -> dict[str, str]:
    """What any process needs from ours (PATH, HOME, the interpreter's settings), not the stack's settings."""
    kept = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")
    return {name: os.environ[name] for name in kept if name in os.environ}


def main() -> int:
    try:
        settings = TwoRegionSettings()  # type: ignore[call-arg]
    except ValidationError as error:
        print(f"two regions: invalid setting:\n{error}", file=sys.stderr)
        return 2
    return run_until_stopped(TwoRegions(settings, say=lambda text: print(text, flush=True)), name="two regions")


if __name__ == "__main__":
    sys.exit(main())
