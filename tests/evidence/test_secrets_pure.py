"""Secrets in parameters: found, moved out of what papermill writes, masked in the manifest
(pure)."""

from __future__ import annotations

from incidentlib.evidence.run import _move_db_password_to_env, _redact_params, _secrets_in


def test_secrets_are_found_in_dsns_urls_named_parameters_and_nested_values():
    params = {
        "dsn": "host=db user=sre password=pw-conninfo-1",
        "replica_dsn": "postgresql://sre:pw-uri-22@replica/app",
        "health_url": "https://svc:pw-basic-333@api.example.com/health?token=tok-query-4444",
        "notify_webhook": "https://hooks.example.com/services/T0/B0/hook-secret-55555",
        "headers": {"Authorization": "Bearer bearer-666666", "accept": "json"},
        "namespace": "production",
        "top_n": 10,
    }
    assert _secrets_in(params) == {
        "pw-conninfo-1",
        "pw-uri-22",
        "pw-basic-333",
        "tok-query-4444",
        "https://hooks.example.com/services/T0/B0/hook-secret-55555",
        "bearer-666666",
    }


def test_one_dsn_password_moves_to_pgpassword():
    kernel, env = _move_db_password_to_env(
        {"dsn": "postgresql://sre:s3cr3t-pw@db:5433/app", "top_n": 3}
    )
    assert env == {"PGPASSWORD": "s3cr3t-pw"}
    assert kernel["top_n"] == 3 and "s3cr3t" not in kernel["dsn"]
    assert sorted(kernel["dsn"].split()) == ["dbname=app", "host=db", "port=5433", "user=sre"]


def test_same_password_in_two_dsns_moves_once_different_ones_stay():
    kernel, env = _move_db_password_to_env(
        {"dsn": "host=a password=same-pw", "replica_dsn": "host=b password=same-pw"}
    )
    assert env == {"PGPASSWORD": "same-pw"} and kernel == {"dsn": "host=a", "replica_dsn": "host=b"}
    params = {"dsn": "host=a password=pw-one", "replica_dsn": "host=b password=pw-two"}
    assert _move_db_password_to_env(params) == (params, {})
    assert _move_db_password_to_env({"dsn": "host=a user=sre"}) == ({"dsn": "host=a user=sre"}, {})


def test_manifest_parameters_are_redacted():
    params = {
        "dsn": "host=a password=pw-conninfo-1",
        "notify_webhook": "https://hooks.example.com/x/hook-secret-55555",
        "pids": [4711],
        "namespace": "production",
    }
    out = _redact_params(params, _secrets_in(params))
    assert out == {
        "dsn": "host=a password=***",
        "notify_webhook": "***",
        "pids": [4711],
        "namespace": "production",
    }


def test_a_percent_encoded_uri_password_moves_decoded():
    kernel, env = _move_db_password_to_env({"dsn": "postgresql://sre:p%40ss-9@db:5433/app"})
    assert env == {"PGPASSWORD": "p@ss-9"}
    assert sorted(kernel["dsn"].split()) == ["dbname=app", "host=db", "port=5433", "user=sre"]


def test_a_masked_query_value_is_a_secret_only_when_its_key_says_so():
    found = _secrets_in(
        {"health_url": "https://api.example.com/health?namespace=production&sig=ab12cd34"}
    )
    assert "ab12cd34" in found and "production" not in found
