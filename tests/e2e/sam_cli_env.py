"""What `sam local invoke --env-vars FILE` / `sam local start-api --env-vars FILE` put in a function's
container, worked out the way SAM CLI does it, for tests that have no Docker.

SAM CLI's rules (samcli/commands/local/lib/local_lambda.py `_make_env_vars`,
samcli/local/lambdafn/env_vars.py `EnvironmentVariables.resolve`):

- The file is a JSON object; every value in it must be an object, or SAM refuses the file.
  `"Parameters"` applies to every function; the object under the function's logical id applies to
  it and wins over `"Parameters"`.
- The container always gets SAM's own AWS_* variables: AWS_SAM_LOCAL, the function's name, memory,
  timeout, handler and log settings, AWS_REGION / AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID /
  AWS_SECRET_ACCESS_KEY (the `sam` command's session, else us-east-1, defaultkey, defaultsecret)
  and AWS_ACCOUNT_ID 123456789012.
- Then each variable the template declares on the function (Globals.Function's, the function's own
  over them), and only those: the file's value, else the `sam` shell's, else the template's.
  A name the template does not declare is dropped, whatever the file says.
- Values become strings: null, objects and lists (an intrinsic SAM could not resolve) "", true and
  false "true" and "false", anything else str().
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from local_stack.template_resources import resources_of_type

SAM_DEFAULT_CREDENTIALS = {"region": "us-east-1", "key": "defaultkey", "secret": "defaultsecret"}
SAM_ACCOUNT_ID = "123456789012"
PARAMETERS = "Parameters"


class EnvVarsFileError(ValueError):
    """SAM would refuse the file (OverridesNotWellDefinedError)."""


def sam_environment(
    template: dict[str, Any],
    env_vars: Any,
    function: str,
    *,
    shell: Mapping[str, str] | None = None,
    aws_credentials: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment SAM gives `function` of `template` with the --env-vars document `env_vars`."""
    if not isinstance(env_vars, dict) or any(not isinstance(value, dict) for value in env_vars.values()):
        raise EnvVarsFileError("every value of the env-vars document must be an object of variables")
    overrides = {**env_vars.get(PARAMETERS, {}), **(env_vars.get(function) or {})}
    shell = shell or {}
    properties = resources_of_type(template, "AWS::Serverless::Function")[function]
    function_globals = template.get("Globals", {}).get("Function", {})

    environment = _sam_aws_variables(function, properties, function_globals, template, aws_credentials or {})
    for name, value in _declared(properties, function_globals).items():
        if name in shell:
            value = shell[name]
        if name in overrides:
            value = overrides[name]
        environment[name] = _as_sam_string(_resolved(value, template))
    return environment


def env_vars_schema(template: dict[str, Any]) -> dict[str, Any]:
    """JSON schema of an env-vars document for `template`: an object whose keys are its functions'
    logical ids (or "Parameters"), each an object of variable name -> string. Stricter than SAM where
    SAM is silent: a misspelt function id or a non-string value SAM would coerce fails here."""
    variables = {
        "type": "object",
        "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
        "additionalProperties": {"type": "string"},
    }
    functions = sorted(resources_of_type(template, "AWS::Serverless::Function"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {name: variables for name in [*functions, PARAMETERS]},
        "additionalProperties": False,
    }


def _declared(properties: Mapping[str, Any], function_globals: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **function_globals.get("Environment", {}).get("Variables", {}),
        **properties.get("Environment", {}).get("Variables", {}),
    }


def _sam_aws_variables(
    function: str,
    properties: Mapping[str, Any],
    function_globals: Mapping[str, Any],
    template: dict[str, Any],
    credentials: Mapping[str, str],
) -> dict[str, str]:
    region = credentials.get("region", SAM_DEFAULT_CREDENTIALS["region"])
    logging_config = _resolved(properties.get("LoggingConfig", function_globals.get("LoggingConfig", {})), template)
    environment = {
        "AWS_SAM_LOCAL": "true",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(properties.get("MemorySize", function_globals.get("MemorySize", 128))),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(properties.get("Timeout", function_globals.get("Timeout", 3))),
        "AWS_LAMBDA_FUNCTION_HANDLER": str(properties.get("Handler", function_globals.get("Handler"))),
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": str(logging_config.get("LogGroup") or f"aws/lambda/{function}"),
        "AWS_LAMBDA_LOG_STREAM_NAME": "$LATEST",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": credentials.get("key", SAM_DEFAULT_CREDENTIALS["key"]),
        "AWS_SECRET_ACCESS_KEY": credentials.get("secret", SAM_DEFAULT_CREDENTIALS["secret"]),
        "AWS_ACCOUNT_ID": SAM_ACCOUNT_ID,
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }
    if credentials.get("sessiontoken"):
        environment["AWS_SESSION_TOKEN"] = credentials["sessiontoken"]
    log_format = logging_config.get("LogFormat")
    if log_format:
        environment["AWS_LAMBDA_LOG_FORMAT"] = log_format
        if log_format == "JSON":
            environment["AWS_LAMBDA_LOG_LEVEL"] = logging_config.get("ApplicationLogLevel", "INFO")
    return environment


def _resolved(value: Any, template: dict[str, Any]) -> Any:
    """The intrinsics SAM resolves that matter here: Ref to a parameter (its Default), to a resource
    (its logical id), to AWS::NoValue (null); anything else stays as it is (and becomes "")."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        if name in template.get("Parameters", {}):
            return template["Parameters"][name].get("Default")
        if name in template.get("Resources", {}):
            return name
        return value
    if isinstance(value, dict) and not any(key == "Ref" or key.startswith("Fn::") for key in value):
        return {key: _resolved(item, template) for key, item in value.items()}
    return value


def _as_sam_string(value: Any) -> str:
    if value is None or isinstance(value, dict | list | tuple):
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)
