"""AWS on loopback: moto's server, with the template's tables, queues and event buses created in it."""

from __future__ import annotations

import logging
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from local_stack import template_resources
from local_stack.ports import free_port, wait_for_port

# Credentials moto accepts; they open nothing anywhere else.
DUMMY_ACCESS_KEY_ID = "local"
DUMMY_SECRET_ACCESS_KEY = "local"  # noqa: S105 - a placeholder moto accepts, not a secret
PORTFOLIO_TABLE = "PortfolioTable"
REFRESH_QUEUE = "RefreshQueue"
ALERT_EVENT_BUS = "AlertEventBus"


@dataclass(frozen=True)
class LocalAws:
    endpoint: str
    region: str
    table_names: dict[str, str]  # logical name -> physical name
    queue_urls: dict[str, str]  # logical name -> queue url
    event_bus_names: dict[str, str] = field(default_factory=dict)  # logical name -> bus name

    def client(self, service: str) -> Any:
        return local_client(service, self.endpoint, self.region)


def local_client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A boto3 client of moto's server, with the placeholder credentials moto accepts."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
    )


def physical_names(logical_names: list[str], stage: str) -> dict[str, str]:
    return {logical: f"{stage}-{logical}" for logical in logical_names}


class MotoServer:
    """moto's server in this process on a free loopback port: AWS APIs over real HTTP. stop() ends it."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._started = False
        self.endpoint = ""

    def start(self) -> MotoServer:
        # moto's HTTP server logs every request through werkzeug: thousands of lines per refresh.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        self._started = True
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False


class MotoProcess:
    """moto's server in a child process on a free loopback port: what it spends answering is not this
    process's CPU (the benchmarks measure this process). stop() ends it."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self.endpoint = ""

    def start(self) -> MotoProcess:
        port = free_port()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter running moto, no outside input
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(port, timeout_s=30)
        self.endpoint = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def __enter__(self) -> MotoProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class MotoStack:
    """moto's server with the template's tables, queues and event buses, named `<stage>-<logical name>`;
    stop() ends it."""

    def __init__(self, region: str, stage: str) -> None:
        self._region = region
        self._stage = stage
        self._server = MotoServer()

    def start(self) -> LocalAws:
        endpoint = self._server.start().endpoint
        template = template_resources.load_template()
        tables = physical_names(list(template_resources.table_resources(template)), self._stage)
        queues = physical_names(list(template_resources.resources_of_type(template, "AWS::SQS::Queue")), self._stage)
        aws = LocalAws(endpoint, self._region, tables, {})
        template_resources.create_tables(aws.client("dynamodb"), tables, template, streams=True)
        queue_urls = template_resources.create_queues(aws.client("sqs"), queues, template)
        buses = physical_names(
            list(template_resources.resources_of_type(template, "AWS::Events::EventBus")), self._stage
        )
        bus_names = template_resources.create_event_buses(aws.client("events"), buses, template)
        return LocalAws(endpoint, self._region, tables, dict(queue_urls), bus_names)

    def stop(self) -> None:
        self._server.stop()
