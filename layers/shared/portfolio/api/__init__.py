"""The HTTPS API: routes, auth, request/response schemas, error mapping and the OpenAPI document."""
