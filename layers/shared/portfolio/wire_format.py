"""The JSON form every model shares (request bodies, responses, queue messages, cached values):
camelCase on the wire, snake_case in Python.

It lives outside the domain on purpose: it is a serialization rule, not an accounting one; the
domain's models take it as their base so that one class is both the rule and its schema.
"""

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)
