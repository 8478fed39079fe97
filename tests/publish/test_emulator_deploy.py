"""ARM template deployments in the emulator, through the real SDK (azure-mgmt-resource-deployments' poller)."""

from __future__ import annotations

import copy

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from builder.azure.clients import compute_client, resource_client
from builder.emulator.template import Scope, TemplateError, evaluate

RG, GALLERY = "rg-deploy", "gal_deploy"
SOURCE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/src"
SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"


def _deployments(settings):
    from azure.mgmt.resource.deployments import DeploymentsMgmtClient

    return DeploymentsMgmtClient(settings.get_credential(), settings.subscription_id, base_url=settings.base_url,
                                 connection_verify=settings.cert, polling_interval=0)


@pytest.fixture
def env(arm_emulator):
    """A resource group, a gallery with image definitions (generalized, specialized, TrustedLaunch) and versions."""
    arm_emulator.configure(retry_after=0)  # no whole-second waits between polls
    settings = arm_emulator.settings
    resource_client(settings).resource_groups.create_or_update(RG, {"location": "eastus2"})
    compute = compute_client(settings)
    compute.galleries.begin_create_or_update(RG, GALLERY, {"location": "eastus2"}).result()
    images = {"gen": ("Generalized", None), "spec": ("Specialized", None), "tl": ("Generalized", "TrustedLaunch")}
    for name, (state, security) in images.items():
        props = {"osType": "Linux", "osState": state, "hyperVGeneration": "V2",
                 "identifier": {"publisher": "p", "offer": name, "sku": "s"}}
        if security:
            props["features"] = [{"name": "SecurityType", "value": security}]
        compute.gallery_images.begin_create_or_update(RG, GALLERY, name, {"location": "eastus2",
                                                                          "properties": props}).result()
        compute.gallery_image_versions.begin_create_or_update(RG, GALLERY, name, "1.0.0", {
            "location": "eastus2", "properties": {"storageProfile": {"source": {"id": SOURCE}},
                                                  "publishingProfile": {"targetRegions": [{"name": "eastus2"}]}}}
        ).result()
    return arm_emulator, _deployments(settings), compute


def _image(handle, name, version="1.0.0"):
    base = (f"/subscriptions/{handle.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/galleries/"
            f"{GALLERY}/images/{name}")
    return f"{base}/versions/{version}" if version else base


def _template(security: str | None = "Standard", os_profile: bool = True) -> dict:
    vm_props = {
        "hardwareProfile": {"vmSize": "[parameters('vmSize')]"},
        "storageProfile": {"imageReference": {"id": "[parameters('imageId')]"}},
        "networkProfile": {"networkInterfaces": [
            {"id": "[resourceId('Microsoft.Network/networkInterfaces', variables('nicName'))]"}]},
    }
    if os_profile:
        vm_props["osProfile"] = {"computerName": "[parameters('vmName')]", "adminUsername": "[parameters('admin')]",
                                 "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
                                     {"path": "[format('/home/{0}/.ssh/authorized_keys', parameters('admin'))]",
                                      "keyData": "[parameters('sshPublicKey')]"}]}}}
    if security:
        vm_props["securityProfile"] = {"securityType": security}
    return {
        "$schema": SCHEMA, "contentVersion": "1.0.0.0",
        "parameters": {
            "vmName": {"type": "string", "defaultValue": "vm1"},
            "admin": {"type": "string"},
            "sshPublicKey": {"type": "securestring"},
            "subnetId": {"type": "string"},
            "imageId": {"type": "string"},
            "vmSize": {"type": "string", "allowedValues": ["Standard_D2s_v5", "Standard_NC24ads_A100_v4"],
                       "defaultValue": "Standard_D2s_v5"},
            "count": {"type": "int", "defaultValue": 1},
        },
        "variables": {"nicName": "[concat(toLower(parameters('vmName')), '-nic')]"},
        "resources": [
            {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2024-05-01",
             "name": "[variables('nicName')]", "location": "[resourceGroup().location]",
             "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
                 "subnet": {"id": "[parameters('subnetId')]"}}}]}},
            {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2024-07-01", "name": "[parameters('vmName')]",
             "location": "[resourceGroup().location]",
             "dependsOn": ["[resourceId('Microsoft.Network/networkInterfaces', variables('nicName'))]"],
             "properties": vm_props},
        ],
        "outputs": {"vmId": {"type": "string",
                             "value": "[resourceId('Microsoft.Compute/virtualMachines', parameters('vmName'))]"}},
    }


def _params(handle, image="gen", **extra) -> dict:
    values = {"admin": "azureuser", "sshPublicKey": "ssh-ed25519 AAAA test", "imageId": _image(handle, image),
              "subnetId": f"/subscriptions/{handle.subscription}/resourceGroups/{RG}/providers/Microsoft.Network/"
                          "virtualNetworks/vnet/subnets/default", **extra}
    return {k: {"value": v} for k, v in values.items() if v is not None}


def _deploy(client, template, parameters, name="dep1"):
    return client.deployments.begin_create_or_update(RG, name, {"properties": {
        "mode": "Incremental", "template": template, "parameters": parameters}}).result()


def _validate(client, template, parameters, name="dep1"):
    return client.deployments.begin_validate(RG, name, {"properties": {
        "mode": "Incremental", "template": template, "parameters": parameters}}).result()


def _error(call) -> tuple[str, str, list]:
    with pytest.raises(HttpResponseError) as caught:
        call()
    error = caught.value.error
    return error.code, error.message, [(d.code, d.message) for d in (error.details or [])]


# ------------------------------------------------------------------ good deployment


def test_good_template_validates_deploys_and_vm_is_gettable(env):
    handle, client, compute = env
    template, parameters = _template(), _params(handle)
    validated = _validate(client, template, parameters)
    assert validated.properties.provisioning_state == "Succeeded"
    vm_id = f"/subscriptions/{handle.subscription}/resourceGroups/{RG}/providers/Microsoft.Compute/virtualMachines/vm1"
    assert {r.id for r in validated.properties.validated_resources} >= {vm_id}

    result = _deploy(client, template, parameters)
    assert result.properties.provisioning_state == "Succeeded"
    assert result.properties.parameters["admin"]["value"] == "azureuser"
    assert "value" not in result.properties.parameters["sshPublicKey"]  # secure values are not echoed

    vm = compute.virtual_machines.get(RG, "vm1")
    assert vm.hardware_profile.vm_size == "Standard_D2s_v5"
    assert vm.storage_profile.image_reference.id == _image(handle, "gen")
    assert vm.os_profile.linux_configuration.ssh.public_keys[0].path == "/home/azureuser/.ssh/authorized_keys"
    nic_id = vm.network_profile.network_interfaces[0].id
    assert nic_id.endswith("/providers/Microsoft.Network/networkInterfaces/vm1-nic")
    nic = resource_client(handle.settings).resources.get_by_id(nic_id, api_version="2024-05-01")
    assert nic.location == "eastus2" and nic.properties["provisioningState"] == "Succeeded"
    assert client.deployments.get(RG, "dep1").properties.provisioning_state == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        client.deployments.get(RG, "never")


def test_deployment_answers_201_with_async_operation(env):
    handle, _, _ = env
    handle.configure(operation_delay=0.3)
    url = (f"{handle.base_url}/subscriptions/{handle.subscription}/resourcegroups/{RG}/providers/"
           "Microsoft.Resources/deployments/raw?api-version=2026-06-01")
    body = {"properties": {"mode": "Incremental", "template": _template(), "parameters": _params(handle)}}
    response = requests.put(url, json=body, verify=handle.cert, timeout=10, headers={"Authorization": "Bearer t"})
    assert response.status_code == 201
    assert response.json()["properties"]["provisioningState"] == "Running"
    status = requests.get(response.headers["Azure-AsyncOperation"], verify=handle.cert, timeout=10,
                          headers={"Authorization": "Bearer t"})
    assert status.json() == {"status": "Running"}


def test_definition_id_uses_newest_version_and_specialized_needs_no_os_profile(env):
    handle, client, compute = env
    parameters = _params(handle, "spec")
    parameters["imageId"] = {"value": _image(handle, "spec", version=None)}
    assert _deploy(client, _template(os_profile=False), parameters).properties.provisioning_state == "Succeeded"
    assert compute.virtual_machines.get(RG, "vm1").os_profile is None


def test_trusted_launch_image_deploys_as_trusted_launch(env):
    handle, client, _ = env
    result = _deploy(client, _template(security="TrustedLaunch"), _params(handle, "tl"))
    assert result.properties.provisioning_state == "Succeeded"


# ------------------------------------------------------------------ preflight: InvalidTemplate


@pytest.mark.parametrize("key", ["$schema", "contentVersion"])
def test_missing_schema_or_content_version(env, key):
    handle, client, _ = env
    template = _template()
    del template[key]
    for call in (_validate, _deploy):
        code, message, _ = _error(lambda c=call: c(client, template, _params(handle)))
        assert code == "InvalidTemplate" and f"'{key}'" in message


def test_missing_parameter(env):
    handle, client, _ = env
    code, message, _ = _error(lambda: _deploy(client, _template(), _params(handle, admin=None)))
    assert code == "InvalidTemplate"
    assert "The value for the template parameter 'admin'" in message and "is not provided" in message


def test_unknown_parameter(env):
    handle, client, _ = env
    code, message, _ = _error(lambda: _validate(client, _template(), _params(handle, colour="blue")))
    assert code == "InvalidTemplate"
    assert "The template parameters 'colour' in the parameters file are not valid" in message


@pytest.mark.parametrize(("name", "value"), [("count", "one"), ("admin", 7), ("count", True)])
def test_wrong_parameter_type(env, name, value):
    handle, client, _ = env
    code, message, _ = _error(lambda: _deploy(client, _template(), _params(handle, **{name: value})))
    assert code == "InvalidTemplate" and f"template parameter '{name}'" in message


def test_value_not_allowed(env):
    handle, client, _ = env
    code, message, _ = _error(lambda: _deploy(client, _template(), _params(handle, vmSize="Standard_A0")))
    assert code == "InvalidTemplate" and "not part of the allowed value(s)" in message


def test_unknown_function(env):
    handle, client, _ = env
    template = _template()
    template["resources"][1]["properties"]["hardwareProfile"]["vmSize"] = "[environment().name]"
    code, message, _ = _error(lambda: _validate(client, template, _params(handle)))
    assert code == "InvalidTemplate" and "The template function 'environment' is not valid" in message


# ------------------------------------------------------------------ the deployment: DeploymentFailed


def test_generalized_image_requires_os_profile(env):
    handle, client, compute = env
    code, _, details = _error(lambda: _deploy(client, _template(os_profile=False), _params(handle)))
    assert code == "DeploymentFailed"
    assert details == [("InvalidParameter", "Required parameter 'osProfile' is missing (null).")]
    failed = client.deployments.get(RG, "dep1")
    assert failed.properties.provisioning_state == "Failed"
    with pytest.raises(HttpResponseError):
        compute.virtual_machines.get(RG, "vm1")


def test_specialized_image_forbids_os_profile(env):
    handle, client, _ = env
    code, _, details = _error(lambda: _deploy(client, _template(), _params(handle, "spec")))
    assert code == "DeploymentFailed" and details == [("InvalidParameter", "Parameter 'osProfile' is not allowed.")]


@pytest.mark.parametrize("image", ["gen/versions/9.9.9", "nothere/versions/1.0.0", "nothere"])
def test_unknown_image_version(env, image):
    handle, client, _ = env
    image_id = _image(handle, image, version=None)
    code, _, details = _error(lambda: _deploy(client, _template(), _params(handle, imageId=image_id)))
    assert code == "DeploymentFailed" and details[0][0] == "GalleryImageNotFound"
    assert f"The gallery image {image_id} is not available in eastus2 region" in details[0][1]


@pytest.mark.parametrize("security", ["Standard", None])
def test_trusted_launch_image_refuses_standard_vm(env, security):
    handle, client, _ = env
    code, _, details = _error(lambda: _deploy(client, _template(security=security), _params(handle, "tl")))
    assert code == "DeploymentFailed"
    assert details == [("BadRequest", "The provided gallery image only supports creation of VMs and VM Scale Sets "
                                      "with 'TrustedLaunch' security type.")]


def test_scale_set_checked_like_a_vm(env):
    handle, client, _ = env
    template = _template()
    vm = template["resources"][1]
    profile = copy.deepcopy(vm["properties"])
    del profile["osProfile"], profile["hardwareProfile"]
    template["resources"][1] = {"type": "Microsoft.Compute/virtualMachineScaleSets", "apiVersion": "2024-07-01",
                                "name": "ss1", "location": "eastus2", "sku": {"name": "Standard_D2s_v5",
                                                                              "capacity": 1},
                                "properties": {"virtualMachineProfile": profile}}
    code, _, details = _error(lambda: _deploy(client, template, _params(handle)))
    assert code == "DeploymentFailed" and details[0][0] == "InvalidParameter"


# ------------------------------------------------------------------ the evaluator alone


def _scope(**parameters) -> Scope:
    return Scope("sub1", "rg1", "eastus2", parameters=parameters, variables={"v": "[concat('a', parameters('p'))]"})


@pytest.mark.parametrize(("expression", "expected"), [
    ("[[not an expression]", "[not an expression]"),
    ("[x] y", "[x] y"),
    ("[concat('a', 'b', 'it''s')]", "abit's"),
    ("[concat(parameters('l'), parameters('l'))]", [1, 2, 1, 2]),
    ("[format('{0}-{1}-{{x}}', 'a', 3)]", "a-3-{x}"),
    ("[toLower('ABC')]", "abc"),
    ("[variables('V')]", "aP"),
    ("[PARAMETERS('o').k[1]]", 20),
    ("[resourceGroup().location]", "eastus2"),
    ("[resourceGroup().id]", "/subscriptions/sub1/resourceGroups/rg1"),
    ("[resourceGroup().name]", "rg1"),
    ("[subscription().subscriptionId]", "sub1"),
    ("[resourceId('Microsoft.Compute/galleries/images', 'g', 'i')]",
     "/subscriptions/sub1/resourceGroups/rg1/providers/Microsoft.Compute/galleries/g/images/i"),
    ("[resourceId('other', 'Microsoft.Network/networkInterfaces', 'n')]",
     "/subscriptions/sub1/resourceGroups/other/providers/Microsoft.Network/networkInterfaces/n"),
    ("[resourceId('s2', 'other', 'Microsoft.Network/networkInterfaces', 'n')]",
     "/subscriptions/s2/resourceGroups/other/providers/Microsoft.Network/networkInterfaces/n"),
])
def test_expressions(expression, expected):
    assert evaluate(expression, _scope(p="P", l=[1, 2], o={"k": [10, 20]})) == expected


def test_unique_string_is_stable_13_characters():
    scope = _scope()
    first = evaluate("[uniqueString(resourceGroup().id)]", scope)
    assert len(first) == 13 and first == evaluate("[uniqueString(resourceGroup().id)]", scope)
    assert first != evaluate("[uniqueString('other')]", scope)


@pytest.mark.parametrize(("expression", "text"), [
    ("[reference('x')]", "The template function 'reference' is not valid"),
    ("[parameters('missing')]", "The template parameter 'missing' is not found"),
    ("[concat('a']", "expected ')'"),
    ("[concat('a') x]", "unexpected 'x'"),
    ("[resourceId('Microsoft.Compute/galleries/images', 'g')]", "requires 2 resource name"),
    ("[format('{0:D3}', 1)]", "format"),
])
def test_expression_errors(expression, text):
    with pytest.raises(TemplateError) as caught:
        evaluate(expression, _scope())
    assert text in caught.value.message and caught.value.message.startswith("Deployment template validation failed")
