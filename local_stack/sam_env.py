"""`sam local invoke` and `sam local start-api` against the running local stack.

SAM runs each function in a Docker container and sets in it the AWS_* variables of its own (the
credentials and region of the `sam` command's session, placeholders without one) and the variables
the template declares on that function, Globals included. A declared variable takes its value from
the `--env-vars` file, else from the shell that runs `sam`, else from the template; a variable the
template does not declare is never set, whatever the file says. So at start-up the stack writes, to
LOCAL_DATA_DIR:

- `sam-env.json`: for every function of the template, every variable the template declares on it,
  pointed at this stack's services under the name a container reaches this machine by
  (SAM_LOCAL_HOST, `host.docker.internal` unless set) instead of 127.0.0.1. What the functions read
  by ARN in AWS stays an ARN: the chain nodes' URLs go into a secret in moto, as RPC_URLS_SECRET_ARN
  names one in AWS; the cache password and the cursor key are not needed here (no Redis user; the
  local cursor key, which STAGE=local allows).
- `sam-template.yaml`: template.yaml with one more declaration, AWS_ENDPOINT_URL (moto), which a
  deployed function must not have. Without it SAM never sets the variable and boto3 in the container
  calls real AWS. It is built apart (`SAM_BUILD_DIR`), so `sam deploy` never sees it.

With LOCAL_BIND_HOST, every service the functions use is offered at that address too (port_relay),
for Docker Engine on Linux, whose containers reach the host at the docker0 bridge, not its loopback.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

from local_stack.aws import ALERT_EVENT_BUS, PORTFOLIO_TABLE, REFRESH_QUEUE, LocalAws
from local_stack.chain_nodes import ChainNodes, other_configured_nodes
from local_stack.config import REPOSITORY_ROOT, LocalStackSettings
from local_stack.embedded_redis import LocalRedis
from local_stack.jwt_auth import AUDIENCE, ISSUER, load_or_create_secret
from local_stack.port_relay import PortRelay
from local_stack.template_resources import load_template, resources_of_type

SAM_ENV_FILE = "sam-env.json"
SAM_TEMPLATE_FILE = "sam-template.yaml"
SAM_BUILD_DIR = ".aws-sam/local"
SAM_LOCAL_API_PORT = 3001  # next to the local stack's 3000
RPC_URLS_SECRET_NAME = "sam-local/rpc-urls"  # noqa: S105 - the name of a secret, not its value
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0"})
# Declared for sam local only. AWS::NoValue: SAM resolves it to an empty value the env-vars file then
# sets; CloudFormation would drop the variable, should this template ever be deployed.
# LOCAL_JWT_SECRET: the WebSocket authorizer checks the stack's HS256 tokens with it (STAGE=local only).
LOCAL_ONLY_VARIABLES: dict[str, Any] = {
    "AWS_ENDPOINT_URL": {"Ref": "AWS::NoValue"},
    "LOCAL_JWT_SECRET": {"Ref": "AWS::NoValue"},
}
TEMPLATE_HEADER = (
    "# Written by the local stack at start-up, for sam local only: template.yaml with AWS_ENDPOINT_URL and\n"
    "# LOCAL_JWT_SECRET declared, so that --env-vars can point the functions at moto and the local token\n"
    "# key. Never deploy it; edit template.yaml.\n"
)
Say = Callable[[str], None]
OnStop = Callable[[str, Callable[[], None]], None]


@dataclass(frozen=True)
class StackServices:
    """Where the running stack's services are, as this machine reaches them, and what it runs with."""

    aws_endpoint: str
    table_name: str
    refresh_queue_url: str
    redis_url: str
    redis_cluster_mode: bool
    prices_api_url: str
    rpc_urls_secret_arn: str  # "" without any chain node
    stage: str
    refresh_interval_s: int
    websocket_callback_url: str  # the emulated management API
    alert_event_bus_name: str
    local_jwt_secret: str


def reachable_from_docker(url: str, host: str) -> str:
    """`url` with a loopback host replaced by `host` (user, password and port kept); others as they are."""
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK_HOSTS:
        return url
    user_info, at, _ = parts.netloc.rpartition("@")
    netloc = f"{user_info}{at}{host}" + (f":{parts.port}" if parts.port is not None else "")
    return urlunsplit(parts._replace(netloc=netloc))


def loopback_port(url: str) -> int | None:
    """The port of a URL on this machine's loopback; None for any other URL."""
    parts = urlsplit(url)
    return parts.port if parts.hostname in LOOPBACK_HOSTS else None


def sam_local_template(template: dict[str, Any] | None = None) -> dict[str, Any]:
    """The template sam local builds: `template` (template.yaml) with LOCAL_ONLY_VARIABLES declared in Globals."""
    local = copy.deepcopy(template if template is not None else load_template())
    function_globals = local.setdefault("Globals", {}).setdefault("Function", {})
    variables = function_globals.setdefault("Environment", {}).setdefault("Variables", {})
    for name, value in LOCAL_ONLY_VARIABLES.items():
        variables.setdefault(name, value)
    return local


def declared_variables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's variables as SAM merges them: Globals.Function's, then the function's own over them."""
    defaults = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return {
        name: {**defaults, **properties.get("Environment", {}).get("Variables", {})}
        for name, properties in resources_of_type(template, "AWS::Serverless::Function").items()
    }


def service_values(services: StackServices, host: str) -> dict[str, str]:
    """The values this stack gives the variables that name its services, as a container reaches them."""
    return {
        "STAGE": services.stage,
        "AWS_ENDPOINT_URL": reachable_from_docker(services.aws_endpoint, host),
        "TABLE_NAME": services.table_name,
        "REFRESH_QUEUE_URL": reachable_from_docker(services.refresh_queue_url, host),
        "REFRESH_INTERVAL_SECONDS": str(services.refresh_interval_s),
        "REDIS_URL": reachable_from_docker(services.redis_url, host),
        "REDIS_CLUSTER_MODE": "true" if services.redis_cluster_mode else "false",
        # The local Redis has no users; an empty value is "unset" to portfolio.settings.
        "REDIS_USERNAME": "",
        "REDIS_PASSWORD_SECRET_ARN": "",
        # STAGE=local: the API signs cursors with the local key, as the stack's own API does.
        "CURSOR_SIGNING_KEY_SECRET_ID": "",
        "PRICES_API_URL": reachable_from_docker(services.prices_api_url, host),
        "RPC_URLS_SECRET_ARN": services.rpc_urls_secret_arn,
        "WEBSOCKET_CALLBACK_URL": reachable_from_docker(services.websocket_callback_url, host),
        "ALERT_EVENT_BUS_NAME": services.alert_event_bus_name,
        # The local stack's tokens: its issuer, audience and HS256 key.
        "JWT_ISSUER": ISSUER,
        "JWT_AUDIENCE": AUDIENCE,
        "LOCAL_JWT_SECRET": services.local_jwt_secret,
    }


def sam_env_document(
    services: StackServices, *, host: str, template: dict[str, Any] | None = None
) -> dict[str, dict[str, str]]:
    """The --env-vars document: function logical id -> every variable the sam local template declares on
    it -> its value here (the stack's, else the template's literal or parameter default)."""
    local_template = sam_local_template(template)
    parameters = local_template.get("Parameters", {})
    values = service_values(services, host)
    return {
        function: {
            name: values[name] if name in values else _template_value(function, name, value, parameters)
            for name, value in variables.items()
        }
        for function, variables in declared_variables(local_template).items()
    }


def _template_value(function: str, name: str, value: Any, parameters: Mapping[str, Any]) -> str:
    """What the template gives a variable that names nothing of this stack: a literal, or a parameter's default."""
    if isinstance(value, dict) and set(value) == {"Ref"} and "Default" in parameters.get(value["Ref"], {}):
        value = parameters[value["Ref"]]["Default"]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(
        f"template.yaml gives {function} {name} = {value!r}, which nothing of the local stack stands for: "
        "add its local value to service_values in local_stack/sam_env.py"
    )


@dataclass
class SamLocal:
    """The files written for sam local, and what the start-up log says about them."""

    env_path: Path
    template_path: Path
    host: str
    region: str
    relays: list[PortRelay] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def announcement(self) -> str:
        env, template = _shown(self.env_path), _shown(self.template_path)
        built = f"{SAM_BUILD_DIR}/template.yaml"
        common = f"--template {built} --env-vars {env} --region {self.region}"
        lines = [
            f"sam local (Docker): the functions reach this stack at {self.host} (SAM_LOCAL_HOST)",
            f"  env vars     {env}",
            f"  template     {template} (template.yaml + AWS_ENDPOINT_URL, which sam local needs for moto)",
            f"  build        sam build --template {template} --base-dir . --build-dir {SAM_BUILD_DIR}",
            f"  invoke       sam local invoke ApiFunction {common} -e events/api-health.json",
            f"  API          sam local start-api {common} --port {SAM_LOCAL_API_PORT}",
        ]
        if self.relays:
            ports = ", ".join(str(relay.port) for relay in self.relays)
            lines.append(f"  also on      {self.relays[0].bind_host} (LOCAL_BIND_HOST), ports {ports}")
        lines += [f"  note         {note}" for note in self.notes]
        return "\n".join(lines)

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()


def prepare_sam_local(
    settings: LocalStackSettings,
    aws: LocalAws,
    redis: LocalRedis,
    prices_api_url: str,
    chains: ChainNodes,
    on_stop: OnStop,
) -> SamLocal:
    """Write sam-env.json and sam-template.yaml for the stack that just started; with LOCAL_BIND_HOST,
    offer its services there too (stopped through `on_stop`)."""
    host = settings.sam_local_host
    node_urls = {**other_configured_nodes(), **{chain: node.url for chain, node in chains.nodes.items()}}
    services = StackServices(
        aws_endpoint=aws.endpoint,
        table_name=aws.table_names[PORTFOLIO_TABLE],
        refresh_queue_url=aws.queue_urls[REFRESH_QUEUE],
        redis_url=redis.url,
        redis_cluster_mode=redis.cluster_mode,
        prices_api_url=prices_api_url,
        rpc_urls_secret_arn=_store_node_urls(
            aws, {chain: reachable_from_docker(url, host) for chain, url in node_urls.items()}
        ),
        stage=settings.stage,
        refresh_interval_s=settings.refresh_interval_s,
        websocket_callback_url=os.environ.get("WEBSOCKET_CALLBACK_URL", ""),
        alert_event_bus_name=aws.event_bus_names.get(ALERT_EVENT_BUS, ""),
        local_jwt_secret=load_or_create_secret(settings.resolved_data_dir, settings.jwt_secret_value),
    )
    template = sam_local_template()
    document = sam_env_document(services, host=host, template=template)
    directory = settings.resolved_data_dir
    directory.mkdir(parents=True, exist_ok=True)
    sam_local = SamLocal(directory / SAM_ENV_FILE, directory / SAM_TEMPLATE_FILE, host, aws.region)
    # A REDIS_URL may carry a password: readable by this user only.
    _write_private(sam_local.env_path, json.dumps(document, indent=2, sort_keys=True) + "\n")
    _write_private(sam_local.template_path, TEMPLATE_HEADER + yaml.safe_dump(template, sort_keys=False, width=120))

    if settings.local_bind_host is not None:
        on_stop("sam local relays", sam_local.stop)
        ports = sorted({port for url in (*service_urls(services), *node_urls.values()) if (port := loopback_port(url))})
        sam_local.relays = [PortRelay(str(settings.local_bind_host), port) for port in ports]
        for relay in sam_local.relays:
            try:
                relay.start()
            except OSError as error:
                raise OSError(
                    f"LOCAL_BIND_HOST {settings.local_bind_host}: cannot listen on port {relay.port} there "
                    f"({error.strerror or error})"
                ) from error
    if redis.cluster_mode and host not in LOOPBACK_HOSTS:
        sam_local.notes.append(
            "the Redis cluster's nodes announce 127.0.0.1 addresses, which a container cannot reach: "
            "sam local needs the single-node Redis (REDIS_CLUSTER_MODE=false)"
        )
    return sam_local


def service_urls(services: StackServices) -> Iterable[str]:
    return (services.aws_endpoint, services.refresh_queue_url, services.redis_url, services.prices_api_url)


def _store_node_urls(aws: LocalAws, urls: Mapping[str, str]) -> str:
    """A secret in moto holding the chain nodes' URLs as RPC_URLS_SECRET_ARN's does in AWS; its ARN ("" for none)."""
    if not urls:
        return ""
    secrets = aws.client("secretsmanager")
    value = json.dumps(dict(sorted(urls.items())))
    try:
        return str(secrets.create_secret(Name=RPC_URLS_SECRET_NAME, SecretString=value)["ARN"])
    except secrets.exceptions.ResourceExistsException:
        return str(secrets.put_secret_value(SecretId=RPC_URLS_SECRET_NAME, SecretString=value)["ARN"])


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an earlier run keeps its mode otherwise
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def _shown(path: Path) -> str:
    """A path as the commands take it, from the repository root."""
    try:
        return str(path.relative_to(REPOSITORY_ROOT))
    except ValueError:
        return str(path)
