import pytest

from feedsync.config import ParseFunctionConfig
from feedsync.errors import ConfigError


def test_defaults():
    config = ParseFunctionConfig.from_env({"STATE_BUCKET": "feedsync-state-1"})
    assert config.settings.visitor_columns == ("mcvisid",)
    assert config.settings.crm_id_column == "post_evar22"


def test_composite_visitor_key():
    env = {"STATE_BUCKET": "b-1x", "VISITOR_COLUMNS": "post_visid_high, post_visid_low"}
    assert ParseFunctionConfig.from_env(env).settings.visitor_columns == (
        "post_visid_high",
        "post_visid_low",
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "STATE_BUCKET is not set"),
        ({"STATE_BUCKET": "Not_A_Bucket"}, "STATE_BUCKET='Not_A_Bucket' is not an S3 bucket name"),
        ({"STATE_BUCKET": "bkt", "VISITOR_COLUMNS": "mcvisid;drop"}, "VISITOR_COLUMNS="),
        ({"STATE_BUCKET": "bkt", "VISITOR_COLUMNS": " , "}, "VISITOR_COLUMNS="),
        ({"STATE_BUCKET": "bkt", "CRM_ID_COLUMN": "post_evar1,post_evar2"}, "exactly one column"),
        ({"STATE_BUCKET": "bkt", "CRM_ID_COLUMN": "mcvisid"}, "must differ"),
    ],
)
def test_bad_settings_are_named(env, message):
    with pytest.raises(ConfigError, match=message):
        ParseFunctionConfig.from_env(env)


def test_a_target_client_code_that_cannot_be_a_host_label_is_named() -> None:
    """Issue 27 (7): the client code forms <client>.tt.omtrdc.net."""
    from feedsync.config import load_enrich_config

    env = {"STATE_BUCKET": "b-state", "STATE_TABLE": "t", "DESTINATIONS": "target",
           "ADOBE_TARGET_TENANT": "acme", "ADOBE_TARGET_CLIENT": "acme.evil/x",
           "CRM_SOURCE": "file", "CRM_FILE": "s3://b-state/crm/x.csv"}  # fmt: skip
    config, problem = load_enrich_config(env)
    assert config is None and problem is not None
    assert "ADOBE_TARGET_CLIENT='acme.evil/x' is not a Target client code" in problem


def test_crm_file_defaults_to_the_stacks_export_key_in_the_state_bucket() -> None:
    from feedsync.config import EnrichFunctionConfig

    env = {"STATE_BUCKET": "b-state", "STATE_TABLE": "t", "DESTINATIONS": "datasources",
           "DATA_SOURCE_ID": "101", "CRM_SOURCE": "file"}  # fmt: skip
    assert EnrichFunctionConfig.from_env(env).crm_file == "s3://b-state/crm/export.jsonl"
    named = {**env, "CRM_FILE": "/data/crm.csv"}
    assert EnrichFunctionConfig.from_env(named).crm_file == "/data/crm.csv"
    with pytest.raises(ConfigError, match="CRM_FILE is not set"):
        from feedsync.config import _crm

        _crm({"CRM_SOURCE": "file"})
