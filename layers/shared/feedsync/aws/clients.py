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

    @classmethod
    def create(cls, table_name: str, *, with_lambda: bool = False) -> AwsClients:
        """Clients for the configured region and credentials (AWS_ENDPOINT_URL is honoured)."""
        import boto3

        return cls(
            s3=boto3.client("s3"),
            secrets=boto3.client("secretsmanager"),
            table=boto3.resource("dynamodb").Table(table_name),
            lambda_=boto3.client("lambda") if with_lambda else None,
        )
