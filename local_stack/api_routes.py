"""The HTTP API's routes, read from the ApiFunction's HttpApi events in template.yaml."""

from __future__ import annotations

from typing import Any

from local_stack.http_events import Route
from local_stack.template_resources import load_template, resources_of_type

API_FUNCTION = "ApiFunction"
NO_AUTHORIZER = "NONE"


def api_routes(template: dict[str, Any] | None = None, function: str = API_FUNCTION) -> tuple[Route, ...]:
    """Every route the function serves; a route whose Auth.Authorizer is NONE is public, as in AWS."""
    template = template or load_template()
    functions = resources_of_type(template, "AWS::Serverless::Function")
    default_authorizer = _default_authorizer(template)
    routes = []
    for event in functions[function].get("Events", {}).values():
        if event.get("Type") != "HttpApi":
            continue
        properties = event["Properties"]
        authorizer = (properties.get("Auth") or {}).get("Authorizer", default_authorizer)
        routes.append(
            Route(
                method=str(properties["Method"]).upper(),
                template=str(properties["Path"]),
                authorized=authorizer not in (None, NO_AUTHORIZER),
            )
        )
    if not routes:
        raise ValueError(f"{function} declares no HttpApi events in the template")
    return tuple(routes)


def _default_authorizer(template: dict[str, Any]) -> str | None:
    for properties in resources_of_type(template, "AWS::Serverless::HttpApi").values():
        authorizer = (properties.get("Auth") or {}).get("DefaultAuthorizer")
        if authorizer:
            return str(authorizer)
    return None
