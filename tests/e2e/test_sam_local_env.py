"""sam local against the running local stack: the env-vars file `make dev` writes, loaded as SAM CLI
loads it (tests/e2e/sam_cli_env.py), runs every function on its events/ fixtures.

No Docker here: each handler runs in this process with exactly the environment SAM would give its
container, and `host.docker.internal` resolves to 127.0.0.1, as Docker Desktop makes it reach the host.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import redis
from portfolio import wiring

from local_stack.config import LocalStackSettings
from local_stack.functions import load_handler
from local_stack.lambda_context import LocalLambdaContext
from local_stack.port_relay import PortRelay
from local_stack.sam_env import (
    SAM_ENV_FILE,
    SAM_TEMPLATE_FILE,
    StackServices,
    reachable_from_docker,
    sam_env_document,
    sam_local_template,
)
from local_stack.template_resources import load_template
from tests.e2e.sam_cli_env import EnvVarsFileError, env_vars_schema, sam_environment
from tests.e2e.stack_process import REPOSITORY_ROOT, local_stack_process, wait_until_healthy
from tests.integration.api.test_sample_events import SEQUENCE as API_EVENTS

EVENTS = REPOSITORY_ROOT / "events"
DOCKER_HOST = "host.docker.internal"
STARTUP_TIMEOUT_S = 120
ANNOUNCED = "sam local (Docker)"
# What the stack's environment must not decide for it: the test runs it as `make dev` runs by default.
STACK_CHOICES = ("REDIS_URL", "REDIS_CLUSTER_MODE", "RPC_URL_", "SAM_LOCAL_HOST", "LOCAL_BIND_HOST", "STAGE")
REFRESH_EVENTS = [
    ("RefreshSchedulerFunction", "scheduler-event.json"),
    ("RefreshSchedulerFunction", "scheduled-event-sam.json"),
    ("PriceUpdaterFunction", "sqs-refresh-batch.json"),
    ("CacheInvalidatorFunction", "dynamodb-portfolio-change.json"),
]


@dataclass
class SamLocalFiles:
    env_vars: dict[str, Any]
    template: dict[str, Any]
    region: str


@pytest.fixture(scope="module")
def sam_local_files(tmp_path_factory) -> Iterator[SamLocalFiles]:
    """The files a running `make dev` wrote for sam local (offline prices, its own Redis and nodes)."""
    directory = tmp_path_factory.mktemp("sam-local")
    variables = {"OFFLINE_PRICES": "1", "REFRESH_INTERVAL_SECONDS": "86400", "AWS_REGION": "us-east-1"}
    with local_stack_process(directory, variables, also_drop=lambda name: name.startswith(STACK_CHOICES)) as (
        process,
        url,
        log_path,
        _,
    ):

        def output() -> str:
            return log_path.read_text(errors="replace")

        wait_until_healthy(process, url, output, timeout_s=STARTUP_TIMEOUT_S)
        deadline = time.monotonic() + 30
        while ANNOUNCED not in output() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ANNOUNCED in output(), output()[-4000:]
        data = directory / "data"
        yield SamLocalFiles(
            env_vars=json.loads((data / SAM_ENV_FILE).read_text()),
            template=load_template(data / SAM_TEMPLATE_FILE),
            region=variables["AWS_REGION"],
        )


@pytest.fixture
def docker_host_is_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve host.docker.internal to 127.0.0.1 in this process, as Docker Desktop's containers reach the host."""
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        return resolve("127.0.0.1" if host == DOCKER_HOST else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@contextmanager
def container_environment(environment: dict[str, str]) -> Iterator[None]:
    """This process's environment replaced by exactly `environment`, with the per-container state a new
    container would not have (wiring's instances, Powertools' secret providers) forgotten on the way in and out."""
    from aws_lambda_powertools.utilities.parameters import base

    saved = dict(os.environ)

    def fresh_container() -> None:
        wiring.reset()
        base.DEFAULT_PROVIDERS.clear()

    os.environ.clear()
    os.environ.update(environment)
    fresh_container()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        fresh_container()


def invoke(files: SamLocalFiles, function: str, event_file: str) -> Any:
    environment = sam_environment(files.template, files.env_vars, function, aws_credentials={"region": files.region})
    event = json.loads((EVENTS / event_file).read_text())
    with container_environment(environment):
        handler = load_handler(function)
        context = LocalLambdaContext(
            function, timeout_s=int(environment["AWS_LAMBDA_FUNCTION_TIMEOUT"]), region=files.region
        )
        return handler(event, context)


def outcome(function: str, answer: Any) -> Any:
    """What says the invocation worked: the API's status, the scheduler's start, the batch failures."""
    if function == "ApiFunction":
        return answer["statusCode"]
    if function == "RefreshSchedulerFunction":
        return {"started": answer["started"]}
    return answer


def test_given_the_running_stack_when_every_function_runs_with_what_sam_would_set_then_each_event_succeeds(
    sam_local_files: SamLocalFiles, docker_host_is_this_machine: None
) -> None:
    # Given the env-vars file and template the stack wrote, loaded as SAM loads them
    # When each events/ fixture goes to its function, in a client's order
    calls = [("ApiFunction", name) for name, _ in API_EVENTS] + REFRESH_EVENTS
    answers = {event_file: invoke(sam_local_files, function, event_file) for function, event_file in calls}
    outcomes = {event_file: outcome(function, answers[event_file]) for function, event_file in calls}

    # Then every one succeeds against the stack's moto, Redis, coins API and chain nodes
    assert outcomes == {
        **{name: status for name, status in API_EVENTS},
        "scheduler-event.json": {"started": True},
        "scheduled-event-sam.json": {"started": True},
        "sqs-refresh-batch.json": {"batchItemFailures": []},
        "dynamodb-portfolio-change.json": {"batchItemFailures": []},
    }
    # And wallet sync found the Ethereum node in the RPC URL secret in moto, and read the stack's anvil
    synced = json.loads(answers["api-post-wallet-sync.json"]["body"])["chains"]
    assert {chain["chain"]: chain["status"] for chain in synced}["ethereum"] == "ok"


def test_given_the_written_env_vars_file_then_it_has_the_shape_sam_takes_and_sets_every_declared_variable(
    sam_local_files: SamLocalFiles,
) -> None:
    document, template = sam_local_files.env_vars, sam_local_files.template

    # Then it is an object of the template's functions, each of variable -> string
    jsonschema.validate(document, env_vars_schema(template))
    # And each function's section sets exactly what the template declares on it, so no value comes
    # from the template (ElastiCache's address, the table's logical id) or the shell running sam
    for function in document:
        declared = {name for name in sam_environment(template, {}, function) if not name.startswith("AWS_")}
        assert set(document[function]) - {"AWS_ENDPOINT_URL"} == declared, function
        assert document[function]["AWS_ENDPOINT_URL"].startswith(f"http://{DOCKER_HOST}:"), function
    # And nothing in it points at the loopback, which a container cannot reach
    assert "127.0.0.1" not in json.dumps(document)
    assert "localhost" not in json.dumps(document)


def test_given_template_yaml_alone_when_sam_loads_the_file_then_it_drops_aws_endpoint_url_which_is_why_the_local_template_declares_it(  # noqa: E501
    sam_local_files: SamLocalFiles,
) -> None:
    # Given the same file with template.yaml as `sam build` alone would build it
    with_template_yaml = sam_environment(load_template(), sam_local_files.env_vars, "ApiFunction")
    with_local_template = sam_environment(sam_local_files.template, sam_local_files.env_vars, "ApiFunction")

    # Then SAM would not pass the moto endpoint, and boto3 would call real AWS; the local template passes it
    assert "AWS_ENDPOINT_URL" not in with_template_yaml
    assert with_local_template["AWS_ENDPOINT_URL"] == sam_local_files.env_vars["ApiFunction"]["AWS_ENDPOINT_URL"]
    assert sam_local_template(load_template()) == sam_local_files.template


# ---------------------------------------------------------------- SAM's rules, as the loader encodes them

TEMPLATE = {
    "Parameters": {"TtlSeconds": {"Type": "Number", "Default": 300}},
    "Globals": {"Function": {"Timeout": 10, "Environment": {"Variables": {"STAGE": "dev", "LEVEL": "INFO"}}}},
    "Resources": {
        "One": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "app.handler",
                "Environment": {
                    "Variables": {
                        "TABLE_NAME": {"Ref": "Table"},
                        "TTL": {"Ref": "TtlSeconds"},
                        "CACHE": {"Fn::Sub": "rediss://${Cache.Endpoint.Address}"},
                        "FLAG": True,
                    }
                },
            },
        },
        "Two": {"Type": "AWS::Serverless::Function", "Properties": {"Handler": "app.handler"}},
        "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
    },
}


def test_given_no_file_then_sam_sets_its_aws_variables_and_the_template_values_it_resolves() -> None:
    environment = sam_environment(TEMPLATE, {}, "One")

    assert {name: environment[name] for name in ("STAGE", "LEVEL", "TABLE_NAME", "TTL", "CACHE", "FLAG")} == {
        "STAGE": "dev",
        "LEVEL": "INFO",
        "TABLE_NAME": "Table",  # a resource's Ref: its logical id
        "TTL": "300",
        "CACHE": "",  # what SAM cannot resolve
        "FLAG": "true",
    }
    assert (environment["AWS_REGION"], environment["AWS_ACCESS_KEY_ID"]) == ("us-east-1", "defaultkey")
    assert (environment["AWS_SAM_LOCAL"], environment["AWS_LAMBDA_FUNCTION_TIMEOUT"]) == ("true", "10")


def test_given_parameters_and_a_function_section_then_the_function_wins_and_undeclared_names_are_dropped() -> None:
    document = {
        "Parameters": {"STAGE": "local", "LEVEL": "DEBUG", "AWS_ENDPOINT_URL": "http://moto"},
        "One": {"LEVEL": "WARNING", "NOT_DECLARED": "x"},
    }

    one, two = sam_environment(TEMPLATE, document, "One"), sam_environment(TEMPLATE, document, "Two")

    assert (one["STAGE"], one["LEVEL"], two["LEVEL"]) == ("local", "WARNING", "DEBUG")
    assert "NOT_DECLARED" not in one
    assert "AWS_ENDPOINT_URL" not in one
    assert "AWS_ENDPOINT_URL" not in two


def test_given_a_shell_value_then_the_file_still_wins_and_the_shell_beats_the_template() -> None:
    environment = sam_environment(TEMPLATE, {"One": {"STAGE": "local"}}, "One", shell={"STAGE": "x", "LEVEL": "ERROR"})

    assert (environment["STAGE"], environment["LEVEL"]) == ("local", "ERROR")


@pytest.mark.parametrize(("value", "seen"), [(None, ""), (True, "true"), (False, "false"), (60, "60"), (0.5, "0.5")])
def test_given_a_value_that_is_not_a_string_then_sam_turns_it_into_one(value: Any, seen: str) -> None:
    assert sam_environment(TEMPLATE, {"One": {"TTL": value}}, "One")["TTL"] == seen


@pytest.mark.parametrize("document", [[], {"One": "STAGE=local"}, {"Parameters": ["STAGE"]}])
def test_given_a_section_that_is_not_an_object_then_sam_refuses_the_file(document: Any) -> None:
    with pytest.raises(EnvVarsFileError):
        sam_environment(TEMPLATE, document, "One")


@pytest.mark.parametrize(
    "document",
    [
        {"One": {"TTL": 300}},  # SAM would coerce it; the file says what it means
        {"Three": {"STAGE": "local"}},  # a function the template does not have: SAM ignores it silently
        {"One": "STAGE=local"},
        {"One": {"not a name": "x"}},
    ],
)
def test_given_a_document_off_the_shape_then_the_schema_refuses_it(document: Any) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, env_vars_schema(TEMPLATE))


# ---------------------------------------------------------------- the document and the host it names

SERVICES = StackServices(
    aws_endpoint="http://127.0.0.1:5000",
    table_name="local-PortfolioTable",
    refresh_queue_url="http://127.0.0.1:5000/123456789012/local-RefreshQueue",
    redis_url="redis://:pw@localhost:6380/0",
    redis_cluster_mode=False,
    prices_api_url="https://coins.llama.fi",
    rpc_urls_secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:sam-local/rpc-urls-abc",
    stage="local",
    refresh_interval_s=300,
    websocket_callback_url="http://127.0.0.1:3000/ws",
    alert_event_bus_name="local-AlertEventBus",
    local_jwt_secret="a-local-signing-key",
)


def test_given_sam_local_host_then_every_service_on_the_loopback_is_named_by_it_and_others_stay() -> None:
    document = sam_env_document(SERVICES, host="192.168.65.254")

    api = document["ApiFunction"]
    assert api["AWS_ENDPOINT_URL"] == "http://192.168.65.254:5000"
    assert api["REDIS_URL"] == "redis://:pw@192.168.65.254:6380/0"
    assert api["PRICES_API_URL"] == "https://coins.llama.fi"
    assert document["RefreshSchedulerFunction"]["REFRESH_QUEUE_URL"] == (
        "http://192.168.65.254:5000/123456789012/local-RefreshQueue"
    )


@pytest.mark.parametrize(
    ("url", "seen"),
    [
        ("http://127.0.0.1:8545", f"http://{DOCKER_HOST}:8545"),
        ("http://localhost/path?q=1", f"http://{DOCKER_HOST}/path?q=1"),
        ("https://eth.example.com/v2/key", "https://eth.example.com/v2/key"),
    ],
)
def test_given_a_url_then_only_a_loopback_host_is_replaced(url: str, seen: str) -> None:
    assert reachable_from_docker(url, DOCKER_HOST) == seen


def test_given_a_template_variable_nothing_local_stands_for_then_writing_the_file_fails_saying_what_to_add() -> None:
    template = load_template()
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    variables["QUEUE_ARN"] = {"Fn::GetAtt": ["RefreshQueue", "Arn"]}

    with pytest.raises(ValueError, match="ApiFunction QUEUE_ARN"):
        sam_env_document(SERVICES, host=DOCKER_HOST, template=template)


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", "192.0.2.1", "not-an-address"])
def test_given_local_bind_host_not_another_address_of_this_machine_then_the_setting_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="LOCAL_BIND_HOST"):
        LocalStackSettings(LOCAL_BIND_HOST=address)  # type: ignore[call-arg]


@pytest.fixture
def relay_address() -> str:
    """A loopback address other than 127.0.0.1 (Linux routes all of 127/8 to lo), standing for docker0's."""
    probe = socket.socket()
    try:
        probe.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 cannot be bound on this machine")
    finally:
        probe.close()
    return "127.0.0.2"


def test_given_local_bind_host_when_a_client_connects_there_then_it_talks_to_the_service_on_127_0_0_1(
    redis_url: str, relay_address: str
) -> None:
    # Given the test Redis on 127.0.0.1 and a relay of its port on another address
    target = urlsplit(redis_url)
    if target.hostname != "127.0.0.1" or target.port is None:
        pytest.skip("REDIS_URL is not on 127.0.0.1")
    port = target.port
    relay = PortRelay(relay_address, port).start()
    try:
        client = redis.Redis(host=relay_address, port=port, socket_timeout=2)
        # When a client there writes and reads
        key = f"relay-{os.getpid()}"
        client.set(key, "through the relay", ex=60)
        seen = client.get(key)
        client.close()
    finally:
        relay.stop()

    # Then it reached the service; and once stopped, nothing listens there any more
    assert seen == b"through the relay"
    with pytest.raises(OSError):
        socket.create_connection((relay_address, port), timeout=1).close()
