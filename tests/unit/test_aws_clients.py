"""The daily run's clients: Lambda (needed only to continue) is created on first use."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from feedsync.aws.clients import AwsClients


def test_the_lambda_client_is_created_only_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    created: list[str] = []
    real = boto3.client

    def counting(service: str, *args: Any, **kwargs: Any) -> Any:
        created.append(service)
        return real(service, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting)
    clients = AwsClients.create("table", with_lambda=True)
    assert "lambda" not in created
    assert clients.lambda_.meta.service_model.service_name == "lambda"
    assert created.count("lambda") == 1
    clients.lambda_.meta  # noqa: B018 - a second use re-uses the client
    assert created.count("lambda") == 1
