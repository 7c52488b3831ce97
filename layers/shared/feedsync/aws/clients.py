"""The boto3 clients a function or a CLI command uses, created once and passed in as one value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.service_resource import Table
    from mypy_boto3_lambda.client import LambdaClient
    from mypy_boto3_s3.client import S3Client
    from mypy_boto3_secretsmanager.client import SecretsManagerClient


@dataclass(frozen=True)
class AwsClients:
    s3: S3Client
    secrets: SecretsManagerClient
    table: Table
    lambda_: LambdaClient | Any = None  # only the daily run continues itself
    sns: Any = None  # the daily run's alerts with Adobe's own words (feed health)

    @classmethod
    def create(cls, table_name: str, *, with_lambda: bool = False) -> AwsClients:
        """Clients for the configured region and credentials (AWS_ENDPOINT_URL is honoured)."""
        import boto3

        return cls(
            s3=boto3.client("s3"),
            secrets=boto3.client("secretsmanager"),
            table=boto3.resource("dynamodb").Table(table_name),
            lambda_=LazyClient("lambda") if with_lambda else None,
            sns=LazyClient("sns") if with_lambda else None,
        )


class LazyClient:
    """A boto3 client created on first use: the daily run needs Lambda only to continue itself
    (rare), so most cold starts skip loading its service model."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client(self.service)  # type: ignore[call-overload]
        return getattr(self._client, name)
