"""samconfig.toml's deploy environments: the region and parameter values `sam deploy --config-env` uses."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

SAMCONFIG = Path(__file__).resolve().parents[2] / "samconfig.toml"


@dataclass(frozen=True)
class DeployEnvironment:
    name: str
    stack_name: str
    region: str | None  # None: the caller's default region
    parameters: dict[str, str]


def deploy_environments(path: Path = SAMCONFIG) -> dict[str, DeployEnvironment]:
    environments = {}
    for name, environment in tomllib.loads(path.read_text()).items():
        if not isinstance(environment, dict):  # the file's `version`
            continue
        deploy = environment.get("deploy", {}).get("parameters", {})
        if not deploy:
            continue
        # A command's own section wins over the environment's global one, as in sam.
        shared = environment.get("global", {}).get("parameters", {})
        overrides = shlex.split(deploy.get("parameter_overrides", ""))
        environments[name] = DeployEnvironment(
            name=name,
            stack_name=deploy["stack_name"],
            region=deploy.get("region", shared.get("region")),
            parameters=dict(pair.split("=", 1) for pair in overrides),
        )
    return environments
