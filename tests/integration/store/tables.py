"""Fresh tables from template.yaml, for tests that need a table of their own."""

from __future__ import annotations

import uuid

import boto3

from local_stack.template_resources import create_tables


def create_fresh_tables(moto_endpoint: str) -> dict[str, str]:
    client = boto3.client("dynamodb", endpoint_url=moto_endpoint, region_name="us-east-1")
    suffix = uuid.uuid4().hex[:8]
    names = {"PortfolioTable": f"portfolio-{suffix}"}
    create_tables(client, names)
    return names
