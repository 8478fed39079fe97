"""Settings from the environment, credentials, client configuration and the Source type."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from azure.core.pipeline.policies import RetryPolicy

from builder.azure import Source, StaticTokenCredential, emulator_settings, settings_from_env
from builder.azure.clients import compute_client, resource_client
from builder.errors import InputError
from tests.conftest import REPO


def test_missing_subscription_is_input_error():
    with pytest.raises(InputError) as caught:
        settings_from_env({})
    assert "AZURE_SUBSCRIPTION_ID: missing subscription" in str(caught.value)


def test_static_token_only_for_the_local_emulator(tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    local = settings_from_env({"AZURE_SUBSCRIPTION_ID": "s", "BUILDER_ARM_ENDPOINT": "https://127.0.0.1:9/",
                               "BUILDER_ARM_CERT": str(cert)})
    assert isinstance(local.credential, StaticTokenCredential) and local.base_url == "https://127.0.0.1:9"
    assert local.cert == str(cert)
    for endpoint in ("https://management.example.com", "https://127.0.0.1.attacker.example", ""):
        remote = settings_from_env({"AZURE_SUBSCRIPTION_ID": "s", "BUILDER_ARM_ENDPOINT": endpoint})
        assert remote.credential is None and not remote.is_local


def test_emulator_settings_refuse_remote_endpoints():
    local = emulator_settings("https://127.0.0.1:8443/", "/tmp/c.pem")
    assert local.is_local and local.polling_interval == 0 and isinstance(local.credential, StaticTokenCredential)
    with pytest.raises(InputError, match="not a local emulator"):
        emulator_settings("https://management.azure.com", "/tmp/c.pem")


def test_default_credential_is_azure_identity():
    settings = settings_from_env({"AZURE_SUBSCRIPTION_ID": "s"})
    assert type(settings.get_credential()).__name__ == "DefaultAzureCredential"


@pytest.mark.parametrize(("env", "message"), [
    ({"BUILDER_ARM_ENDPOINT": "http://127.0.0.1:1"}, "BUILDER_ARM_ENDPOINT: 'http://127.0.0.1:1' must be an https"),
    ({"BUILDER_ARM_CERT": "/nonexistent.pem"}, "BUILDER_ARM_CERT: certificate file"),
    ({"BUILDER_ARM_POLLING_INTERVAL": "soon"}, "BUILDER_ARM_POLLING_INTERVAL: expected a number"),
    ({"BUILDER_ARM_RETRY_BACKOFF": "-1"}, "BUILDER_ARM_RETRY_BACKOFF: must be a finite number >= 0"),
    ({"BUILDER_ARM_POLLING_INTERVAL": "nan"}, "BUILDER_ARM_POLLING_INTERVAL: must be a finite number >= 0"),
    ({"BUILDER_ARM_RETRY_BACKOFF": "inf"}, "BUILDER_ARM_RETRY_BACKOFF: must be a finite number >= 0"),
])
def test_bad_environment_values(env, message):
    with pytest.raises(InputError) as caught:
        settings_from_env({"AZURE_SUBSCRIPTION_ID": "s", **env})
    assert message in str(caught.value)


def test_clients_use_configured_retry_policy_and_endpoint(arm_emulator):
    settings = arm_emulator.settings
    settings.retry_total = 7
    for client in (compute_client(settings), resource_client(settings)):
        policy = client._config.retry_policy
        assert isinstance(policy, RetryPolicy)
        assert policy.total_retries == 7 and policy.backoff_factor == settings.retry_backoff_factor
        assert client._config.polling_interval == 0
    assert compute_client(settings)._config.base_url == arm_emulator.base_url


def test_source_validation_and_profiles():
    image = "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/i"
    assert Source(managed_image_id=image).storage_profile() == {"source": {"id": image}}
    with pytest.raises(InputError, match="exactly one source"):
        Source(managed_image_id=image, vm_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/"
                                             "virtualMachines/v")
    with pytest.raises(InputError, match="--source-image-id"):
        Source(managed_image_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/d")
    with pytest.raises(InputError, match="--vhd-uri"):
        Source(vhd_uri="http://acct.blob.core.windows.net/v/d.vhd",
               storage_account_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a")
    vhd = Source(vhd_uri="https://acct.blob.core.windows.net/v/d.vhd",
                 storage_account_id="/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a")
    assert Source.from_storage_profile(vhd.storage_profile()).same_as(vhd)
    assert not Source.from_storage_profile(vhd.storage_profile()).same_as(Source(managed_image_id=image))


def test_help_stays_fast_without_azure_imports():
    mine = ("azure.mgmt", "builder.azure", "builder.emulator")
    code = f"import json, sys; import builder.cli; print(json.dumps([m for m in sys.modules if m.startswith({mine})]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         check=True)
    assert json.loads(out.stdout) == []
