"""``builder reference``: paste-ready snippets that deploy a published image version.

Everything comes from the catalog (gallery destination, target SKUs, features) and ``images/skus.yaml``
(InfiniBand, accelerated networking). What the catalog cannot know (the subscription, the consumer's resource
group and network) prints as a clearly marked placeholder in the idiom of each format: a ``${VAR}`` shell
variable for ``id``/``cli``/``arm``/``batch``/``cyclecloud``, a Bicep ``param`` and a Terraform ``variable``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from builder.catalog.loader import Catalog
from builder.catalog.schema import OS, Image, Sku
from builder.errors import InputError

FORMATS = ("id", "cli", "bicep", "terraform", "arm", "batch", "cyclecloud")
SUBSCRIPTION_PLACEHOLDER = "AZURE_SUBSCRIPTION_ID"
# Azure REST api-versions of the snippets (stable releases that carry every property used).
VM_API_VERSION = "2024-07-01"
NIC_API_VERSION = "2024-05-01"
# Azure Batch node agent per image OS (the agent must match the image's distribution).
BATCH_NODE_AGENTS = {OS.ubuntu2204: "batch.node.ubuntu 22.04", OS.ubuntu2404: "batch.node.ubuntu 24.04",
                     OS.debian12: "batch.node.debian 12"}
SPOT_NOTE = ("Spot VMs can be evicted with ~30 s notice (Scheduled Events 'Preempt'): checkpoint training state "
             "to durable storage (Blob/ANF/Lustre) and make jobs resumable.")


@dataclass(frozen=True)
class Ref:
    """A reference to something the consumer sets (shell variable, Bicep param, Terraform variable)."""

    expression: str


@dataclass(frozen=True)
class Target:
    """Where and how the image is deployed: gallery coordinates, version, size and options."""

    image: Image
    subscription: str | None
    version: str | None  # None: the latest version not excluded from latest
    vm_size: str
    sku: Sku | None
    spot: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def subscription_ref(self) -> str:
        return self.subscription or "${" + SUBSCRIPTION_PLACEHOLDER + "}"

    def image_id(self) -> str:
        """The image id as text; without a subscription it carries the ``${AZURE_SUBSCRIPTION_ID}`` placeholder."""
        return "".join(p if isinstance(p, str) else "${" + p.expression + "}" for p in self.image_id_parts())

    def image_id_parts(self, expression: str = SUBSCRIPTION_PLACEHOLDER) -> list[str | Ref]:
        """The image id as literal text and, without a subscription, a reference to ``expression`` (the shell
        variable, Bicep param or Terraform variable): each format escapes the text its own way."""
        g = self.image.gallery
        tail = (f"/resourceGroups/{g.resource_group}/providers/Microsoft.Compute"
                f"/galleries/{g.gallery}/images/{g.definition}")
        if self.version:
            tail += f"/versions/{self.version}"
        if self.subscription:
            return [f"/subscriptions/{self.subscription}{tail}"]
        return ["/subscriptions/", Ref(expression), tail]

    @property
    def infiniband(self) -> bool:
        return bool(self.sku and self.sku.infiniband)

    @property
    def accelerated_networking(self) -> bool:
        sku_ok = self.sku.accelerated_networking if self.sku else True
        return sku_ok and self.image.gallery.features.accelerated_networking

    @property
    def security_type(self) -> str:
        wanted = self.image.gallery.features.security_type
        return "Standard" if wanted == "Standard" else "TrustedLaunch"

    @property
    def placeholders(self) -> list[str]:
        return [] if self.subscription else [SUBSCRIPTION_PLACEHOLDER]


def resolve_target(catalog: Catalog, name: str, version: str | None, vm_size: str | None, spot: bool,
                   subscription: str | None, published: list[str] | None = None) -> Target:
    """Check the options against the catalog and return the deployment target (InputError when wrong)."""
    from builder.render import require_valid_image
    from builder.versioning import require_valid

    require_valid_image(catalog, name)  # the names a snippet carries follow Azure's rules (the gallery rule)
    image = catalog.model(name)
    if version in (None, "", "latest"):
        version = None
    else:
        require_valid(version)
        if published and version not in published:
            raise InputError(f"version {version} of '{name}' is not published here; known: {', '.join(published)}",
                             field="--version")
    size = vm_size or image.target_skus[0]
    if size not in image.target_skus:
        file, line = catalog.get(name).where(("target_skus",))
        raise InputError(f"'{size}' is not a target SKU of '{name}'; choose one of: {', '.join(image.target_skus)}",
                         file=file, line=line, field="--vm-size")
    sku = catalog.skus.get(size)
    notes: list[str] = []
    target = Target(image, subscription, version, size, sku, spot, notes)
    if version is None:
        notes.append("No version given: the definition id deploys the newest version not excluded from latest "
                     "(staged versions are excluded until promoted).")
    if target.infiniband:
        ib = sku.infiniband
        notes.append(f"{size} has InfiniBand ({ib.ports} x {ib.rate_gbps} Gb/s): VMs only share the IB fabric "
                     "inside one scale set placement group (singlePlacementGroup) or availability set.")
    if target.accelerated_networking:
        notes.append("Accelerated networking is on (set on the NIC).")
    if spot:
        notes.append(SPOT_NOTE)
    if image.base.marketplace and image.base.marketplace.plan:
        notes.append("The base image carries a Marketplace purchase plan: accept its terms once per subscription "
                     "(az vm image terms accept) and pass the same plan when deploying.")
    if not subscription:
        notes.append(f"Placeholder: set {SUBSCRIPTION_PLACEHOLDER} to the subscription that holds the gallery.")
    return target


# ---------------------------------------------------------------- formats


def _plan(t: Target) -> dict[str, str] | None:
    m = t.image.base.marketplace
    return {"name": m.plan.name, "product": m.plan.product, "publisher": m.plan.publisher} if m and m.plan else None


def _comments(t: Target, prefix: str) -> str:
    head = f"{t.image.name} {t.version or 'latest'} on {t.vm_size}"
    return "\n".join(f"{prefix} {_one_line(line)}" for line in [head, *t.notes]) + "\n"


# ---------------------------------------------------------------- escaping, per language
#
# Catalog text (resource group, gallery and definition names, plan fields, versions) is data in every snippet:
# a quote, `$(...)`, `${...}` or `%{...}` in it must not turn into code when the snippet is pasted or applied.

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(text: str) -> str:
    """Comment text on one line: control characters (a newline would end the comment) become spaces."""
    return _CONTROL.sub(" ", text)


def _sh_word(value: str) -> str:
    """A POSIX shell word for ``value`` (``shlex.quote``: single quotes unless every character is safe)."""
    return shlex.quote(value)


def _sh_double(parts: list[str | Ref]) -> str:
    """A double-quoted shell word in which the ``Ref`` parts expand (``"${VAR}"``) and the text does not.

    Inside double quotes the backslash escapes exactly ``$``, `` ` ``, ``"``, ``\\`` (and newline), the characters
    that are special there (POSIX Shell Command Language, 2.2.3 Double-Quotes,
    https://pubs.opengroup.org/onlinepubs/9799919799/utilities/V3_chap02.html#tag_19_02_03).
    """
    def text(value: str) -> str:
        return re.sub(r'([$`"\\])', r"\\\1", value)

    return '"' + "".join(text(p) if isinstance(p, str) else "${" + p.expression + "}" for p in parts) + '"'


def _hcl_text(value: str) -> str:
    """``value`` inside an HCL quoted template: JSON's escapes (``\\"``, ``\\\\``, ``\\n``, ``\\uNNNN``: HCL's own
    set), and the template markers doubled, ``${`` as ``$${`` and ``%{`` as ``%%{`` (HCL native syntax
    specification, "Template Literals": "The interpolation and directive introductions are escaped by doubling
    their leading characters", https://github.com/hashicorp/hcl/blob/main/hclsyntax/spec.md#template-literals).
    """
    return json.dumps(value)[1:-1].replace("${", "$${").replace("%{", "%%{")


def _hcl_string(value: str | list[str | Ref]) -> str:
    parts = [value] if isinstance(value, str) else value
    return '"' + "".join(_hcl_text(p) if isinstance(p, str) else "${" + p.expression + "}" for p in parts) + '"'


_BICEP_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _bicep_text(value: str) -> str:
    """``value`` inside a Bicep string: ``\\\\``, ``\\'``, ``\\n``, ``\\r``, ``\\t``, ``\\$`` before ``{`` (else ``${``
    starts an interpolation), other control characters as ``\\u{x}`` (Bicep language specification, "Strings":
    the reserved characters escaped by a backslash, https://github.com/Azure/bicep/blob/main/docs/spec/bicep.md;
    https://learn.microsoft.com/azure/azure-resource-manager/bicep/data-types#strings)."""
    out = []
    for i, char in enumerate(value):
        if char in _BICEP_ESCAPES:
            out.append(_BICEP_ESCAPES[char])
        elif char == "$" and value[i + 1:i + 2] == "{":
            out.append("\\$")
        elif _CONTROL.match(char):
            out.append(f"\\u{{{ord(char):x}}}")
        else:
            out.append(char)
    return "".join(out)


def _bicep_string(value: str | list[str | Ref]) -> str:
    parts = [value] if isinstance(value, str) else value
    return "'" + "".join(_bicep_text(p) if isinstance(p, str) else "${" + p.expression + "}" for p in parts) + "'"


def render_id(t: Target) -> str:
    return t.image_id() + "\n"


def render_cli(t: Target) -> str:
    args = ["az vm create", "--resource-group \"${RESOURCE_GROUP}\"", f"--name {_sh_word(t.image.name + '-vm')}",
            f"--image {_sh_double(t.image_id_parts())}", f"--size {_sh_word(t.vm_size)}",
            "--admin-username azureuser --generate-ssh-keys", f"--security-type {t.security_type}",
            f"--accelerated-networking {'true' if t.accelerated_networking else 'false'}"]
    if t.spot:
        args.append("--priority Spot --eviction-policy Deallocate --max-price -1")
    if plan := _plan(t):
        args.append(f"--plan-name {_sh_word(plan['name'])} --plan-product {_sh_word(plan['product'])} "
                    f"--plan-publisher {_sh_word(plan['publisher'])}")
    return _comments(t, "#") + " \\\n  ".join(args) + "\n"


def _vm_properties(t: Target, image_ref: object, nic_id: object) -> dict:
    props: dict = {
        "hardwareProfile": {"vmSize": t.vm_size},
        "storageProfile": {"imageReference": image_ref, "osDisk": {"createOption": "FromImage"}},
        "networkProfile": {"networkInterfaces": [{"id": nic_id}]},
    }
    if t.security_type == "TrustedLaunch":
        props["securityProfile"] = {"securityType": "TrustedLaunch",
                                    "uefiSettings": {"secureBootEnabled": False, "vTpmEnabled": True}}
    if t.spot:
        props |= {"priority": "Spot", "evictionPolicy": "Deallocate", "billingProfile": {"maxPrice": -1}}
    return props


def render_arm(t: Target) -> str:
    """An ARM VM resource (JSON) to drop into a template's ``resources``; notes ride in ``metadata``."""
    resource: dict = {
        "type": "Microsoft.Compute/virtualMachines",
        "apiVersion": VM_API_VERSION,
        "name": "[parameters('vmName')]",
        "location": "[resourceGroup().location]",
        "metadata": {"image": t.image.name, "version": t.version or "latest", "notes": t.notes},
        "properties": _vm_properties(t, {"id": t.image_id()}, "[parameters('nicId')]"),
    }
    if plan := _plan(t):
        resource["plan"] = plan
    doc = {"parameters": {"vmName": {"type": "string"}, "nicId": {"type": "string", "metadata": {
        "description": f"NIC with enableAcceleratedNetworking={str(t.accelerated_networking).lower()}"}}},
        "resources": [resource]}
    return json.dumps(doc, indent=2) + "\n"


def _bicep_value(value: object, indent: int) -> str:
    pad = "  " * indent
    if isinstance(value, dict):
        inner = "".join(f"{pad}  {k}: {_bicep_value(v, indent + 1)}\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    if isinstance(value, list):
        inner = "".join(f"{pad}  {_bicep_value(v, indent + 1)}\n" for v in value)
        return "[\n" + inner + pad + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, _Raw):
        return value.text
    if isinstance(value, _Template):
        return _bicep_string(value.parts)
    return _bicep_string(str(value))


class _Raw:
    """A Bicep/HCL expression written verbatim (a parameter reference)."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Template:
    """A string of literal text and references (``Ref``), written as one interpolated string."""

    def __init__(self, parts: list[str | Ref]) -> None:
        self.parts = parts


def render_bicep(t: Target) -> str:
    lines = [_comments(t, "//").rstrip("\n")]
    if t.placeholders:
        about = "PLACEHOLDER: subscription that holds the gallery " + t.image.gallery.gallery
        lines.append(f"@description({_bicep_string(about)})")
        lines.append(f"param {SUBSCRIPTION_PLACEHOLDER} string")
    lines += ["param vmName string", "param location string = resourceGroup().location",
              f"@description('NIC with enableAcceleratedNetworking: {str(t.accelerated_networking).lower()}')",
              "param nicId string", ""]
    image_id = _Template(t.image_id_parts(SUBSCRIPTION_PLACEHOLDER))  # the param of the same name
    body: dict = {"name": _Raw("vmName"), "location": _Raw("location")}
    if plan := _plan(t):
        body["plan"] = plan
    body["properties"] = _vm_properties(t, {"id": image_id}, _Raw("nicId"))
    lines.append(f"resource vm 'Microsoft.Compute/virtualMachines@{VM_API_VERSION}' = {_bicep_value(body, 0)}")
    return "\n".join(lines) + "\n"


def render_terraform(t: Target) -> str:
    """``azurerm_linux_virtual_machine`` with ``source_image_id`` (and the NIC's networking settings)."""
    out = [_comments(t, "#").rstrip("\n")]
    if t.placeholders:
        out += ['variable "azure_subscription_id" {',
                '  description = "PLACEHOLDER: subscription that holds the gallery"', "  type        = string", "}"]
    out += ['variable "resource_group_name" {', "  type = string", "}",
            'variable "location" {', "  type = string", "}",
            'variable "subnet_id" {', "  type = string", "}",
            'variable "admin_ssh_public_key" {', "  type = string", "}", "",
            'resource "azurerm_network_interface" "vm" {',
            f"  name                           = {_hcl_string(t.image.name + '-nic')}",
            "  location                       = var.location",
            "  resource_group_name            = var.resource_group_name",
            f"  accelerated_networking_enabled = {str(t.accelerated_networking).lower()}",
            "  ip_configuration {", '    name                          = "primary"',
            "    subnet_id                     = var.subnet_id",
            '    private_ip_address_allocation = "Dynamic"', "  }", "}", "",
            'resource "azurerm_linux_virtual_machine" "vm" {',
            f"  name                  = {_hcl_string(t.image.name + '-vm')}",
            "  resource_group_name   = var.resource_group_name",
            "  location              = var.location",
            f"  size                  = {_hcl_string(t.vm_size)}",
            f"  source_image_id       = {_hcl_string(t.image_id_parts('var.azure_subscription_id'))}",
            '  admin_username        = "azureuser"',
            "  network_interface_ids = [azurerm_network_interface.vm.id]"]
    if t.spot:
        out += ['  priority              = "Spot"', '  eviction_policy       = "Deallocate"',
                "  max_bid_price         = -1"]
    if t.security_type == "TrustedLaunch":
        out += ["  vtpm_enabled          = true", "  secure_boot_enabled   = false"]
    out += ["  admin_ssh_key {", '    username   = "azureuser"', "    public_key = var.admin_ssh_public_key", "  }",
            "  os_disk {", '    caching              = "ReadWrite"',
            '    storage_account_type = "Premium_LRS"', "  }"]
    if plan := _plan(t):
        out += ["  plan {", *(f"    {k} = {_hcl_string(v)}" for k, v in plan.items()), "  }"]
    out.append("}")
    return "\n".join(out) + "\n"


def render_batch(t: Target) -> str:
    """A Batch pool (``az batch pool create --json-file``) with ``imageReference`` and ``nodeAgentSkuId``."""
    pool: dict = {
        "id": f"{t.image.name}-pool",
        "vmSize": t.vm_size,
        "virtualMachineConfiguration": {
            "imageReference": {"virtualMachineImageId": t.image_id()},
            "nodeAgentSkuId": BATCH_NODE_AGENTS[t.image.os],
        },
        "networkConfiguration": {"enableAcceleratedNetworking": t.accelerated_networking},
        "targetDedicatedNodes": 0 if t.spot else 1,
        "targetLowPriorityNodes": 1 if t.spot else 0,
        "taskSlotsPerNode": 1,
        "enableInterNodeCommunication": t.infiniband,
        "metadata": [{"name": "builder-notes", "value": " ".join(t.notes)}],
    }
    return json.dumps(pool, indent=2) + "\n"


def render_cyclecloud(t: Target) -> str:
    """A CycleCloud cluster-template nodearray using the gallery image as ``ImageName``."""
    lines = [_comments(t, "#").rstrip("\n"), f"[[nodearray {_one_line(t.image.name)}]]",
             f"ImageName = {_one_line(t.image_id())}", f"MachineType = {_one_line(t.vm_size)}"]
    if t.spot:
        lines += ["Interruptible = true", "MaxPrice = -1"]
    if t.infiniband:
        lines.append("# scale sets of at most 100 VMs stay in one placement group: one InfiniBand fabric")
        lines.append("Azure.MaxScalesetSize = 100")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Target], str]] = {
    "id": render_id, "cli": render_cli, "bicep": render_bicep, "terraform": render_terraform, "arm": render_arm,
    "batch": render_batch, "cyclecloud": render_cyclecloud,
}


def render(target: Target, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise InputError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}", field="--format")
    return RENDERERS[fmt](target)
