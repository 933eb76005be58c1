"""One Powertools Logger, Metrics and Tracer for the whole package."""

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE_NAME = "cross-chain-portfolio"
METRICS_NAMESPACE = "CrossChainPortfolio"

# POWERTOOLS_SERVICE_NAME / POWERTOOLS_METRICS_NAMESPACE from the template win over these defaults.
logger = Logger(service=SERVICE_NAME)
metrics = Metrics(service=SERVICE_NAME, namespace=METRICS_NAMESPACE)
# Only AWS SDK calls are traced: the coins API's Pro key sits in its URL path, which an httpx
# subsegment would record.
tracer = Tracer(service=SERVICE_NAME, patch_modules=["botocore"])
