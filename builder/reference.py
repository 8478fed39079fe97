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
from builder.catalog.schema import OS, Image, Purpose, Sku
from builder.errors import InputError

VM_FORMATS = ("id", "cli", "bicep", "terraform", "arm", "batch", "cyclecloud")
# Scale sets for multi-node training (images whose purpose is train): InfiniBand only joins VMs of one placement group.
SCALE_SET_FORMATS = ("vmss-cli", "vmss-arm", "vmss-bicep", "vmss-terraform", "vmss-cyclecloud")
FORMATS = VM_FORMATS + SCALE_SET_FORMATS
SUBSCRIPTION_PLACEHOLDER = "AZURE_SUBSCRIPTION_ID"
# Azure REST api-versions of the snippets (stable releases that carry every property used).
VM_API_VERSION = "2024-07-01"
# Microsoft.Network api-version for a VM's networkInterfaceConfigurations (one of the values azure-mgmt-compute 39's
# NetworkApiVersion enum allows, .venv/.../azure/mgmt/compute/models/_enums.py).
NETWORK_API_VERSION = "2020-11-01"
# The ARM template header: "$schema" and "contentVersion" are required (Template format,
# https://docs.azure.cn/en-us/azure-resource-manager/resource-group-authoring-templates).
ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
# The newest azurerm provider release in its changelog (hashicorp/terraform-provider-azurerm CHANGELOG.md@00030056ee5b:
# "4.55.0 (December 04, 2025)"); "~>" takes its patch releases only.
AZURERM_VERSION = "~> 4.55.0"
# A scale set in a single placement group holds at most 100 VMs (azurerm docs, linux_virtual_machine_scale_set
# "single_placement_group ... capped at 100 Virtual Machines", hashicorp/terraform-provider-azurerm@00fe615dd035).
PLACEMENT_GROUP_MAX = 100
DEFAULT_INSTANCES = 2
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
    instances: int = DEFAULT_INSTANCES  # scale-set formats only
    # The target SKUs a size parameter may take: those with this size's InfiniBand and accelerated networking (the
    # snippet's placement-group and NIC settings follow them); empty: only vm_size.
    size_options: tuple[str, ...] = ()

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
    def dkms_modules(self) -> list[str]:
        """Components whose kernel modules DKMS builds, signed with a key no deployed VM has enrolled (as the
        secure-boot rule counts them: an NVIDIA driver with ``modules: signed-prebuilt`` is Canonical-signed)."""
        from builder.catalog.rules import DKMS_MODULES

        def dkms(name: str) -> bool:
            component = getattr(self.image.components, name, None)
            if component is None:
                return False
            return not (name == "nvidia_driver" and getattr(component, "modules", "dkms") == "signed-prebuilt")

        return [name for name in DKMS_MODULES if dkms(name)]

    @property
    def secure_boot(self) -> bool:
        """Secure Boot on a TrustedLaunch VM: only when no kernel module comes from DKMS (it would not load)."""
        return self.security_type == "TrustedLaunch" and not self.dkms_modules

    @property
    def vtpm(self) -> bool:
        """vTPM: on for every TrustedLaunch VM (every format writes it so), absent on Standard."""
        return self.security_type == "TrustedLaunch"

    @property
    def security_note(self) -> str:
        if self.security_type != "TrustedLaunch":
            return "Security type Standard (the gallery definition's): no Secure Boot or vTPM settings."
        if self.dkms_modules:
            return (f"Trusted Launch with Secure Boot OFF and vTPM on: {', '.join(self.dkms_modules)} kernel modules "
                    "are built by DKMS and signed with a key no deployed VM has enrolled, so Secure Boot would refuse "
                    "to load them.")
        return "Trusted Launch with Secure Boot and vTPM on: the image carries no DKMS-built kernel module."

    @property
    def placeholders(self) -> list[str]:
        return [] if self.subscription else [SUBSCRIPTION_PLACEHOLDER]


def resolve_target(catalog: Catalog, name: str, version: str | None, vm_size: str | None, spot: bool,
                   subscription: str | None, published: list[str] | None = None,
                   instances: int = DEFAULT_INSTANCES) -> Target:
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
    def network(name: str) -> tuple[bool, bool]:
        other = catalog.skus.get(name)
        return bool(other and other.infiniband), other.accelerated_networking if other else True

    options = tuple(s for s in image.target_skus if network(s) == network(size))
    target = Target(image, subscription, version, size, sku, spot, notes, instances, options)
    if instances < 1:
        raise InputError(f"--instances must be at least 1 (got {instances})", field="--instances")
    if target.infiniband and instances > PLACEMENT_GROUP_MAX:
        raise InputError(f"{size} uses InfiniBand, which needs one placement group: at most {PLACEMENT_GROUP_MAX} "
                         f"VMs per scale set (got {instances})", field="--instances")
    if version is None:
        notes.append("No version given: the definition id deploys the newest version not excluded from latest "
                     "(staged versions are excluded until promoted).")
    if target.infiniband:
        ib = sku.infiniband
        notes.append(f"{size} has InfiniBand ({ib.ports} x {ib.rate_gbps} Gb/s): VMs only share the IB fabric "
                     "inside one scale set placement group (singlePlacementGroup) or availability set.")
    if target.accelerated_networking:
        notes.append("Accelerated networking is on (set on the NIC).")
    if target.security_type == "TrustedLaunch":
        notes.append(target.security_note)
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


# ---------------------------------------------------------------- az CLI
#
# Option names as az 2.91's own parser takes them (`az vm create -h`, `az vmss create -h`); the tests run that parser
# on every printed command (tests/deploy/test_reference_deploy.py).


def _cli_security(t: Target) -> list[str]:
    if t.security_type != "TrustedLaunch":
        return ["--security-type Standard"]
    return [f"--security-type TrustedLaunch --enable-secure-boot {str(t.secure_boot).lower()} --enable-vtpm true"]


def _cli_common(t: Target) -> list[str]:
    args = [f"--image {_sh_double(t.image_id_parts())}", "--admin-username azureuser --generate-ssh-keys",
            *_cli_security(t), f"--accelerated-networking {'true' if t.accelerated_networking else 'false'}"]
    if t.spot:
        args.append("--priority Spot --eviction-policy Deallocate --max-price -1")
    if plan := _plan(t):
        args.append(f"--plan-name {_sh_word(plan['name'])} --plan-product {_sh_word(plan['product'])} "
                    f"--plan-publisher {_sh_word(plan['publisher'])}")
    return args


def render_cli(t: Target) -> str:
    args = ["az vm create", "--resource-group \"${RESOURCE_GROUP}\"", f"--name {_sh_word(t.image.name + '-vm')}",
            f"--size {_sh_word(t.vm_size)}", *_cli_common(t)]
    return _comments(t, "#") + " \\\n  ".join(args) + "\n"


def render_vmss_cli(t: Target) -> str:
    """``az vmss create``: Uniform orchestration, one placement group for InfiniBand, no load balancer."""
    args = ["az vmss create", "--resource-group \"${RESOURCE_GROUP}\"", f"--name {_sh_word(t.image.name + '-vmss')}",
            f"--vm-sku {_sh_word(t.vm_size)}", f"--instance-count {t.instances}",
            "--orchestration-mode Uniform",
            f"--single-placement-group {'true' if t.infiniband else 'false'}",
            "--disable-overprovision --upgrade-policy-mode Manual",
            "--subnet \"${SUBNET_ID}\" --lb \"\"", *_cli_common(t)]
    return _comments(t, "#") + " \\\n  ".join(args) + "\n"


# ---------------------------------------------------------------- ARM and Bicep: one resource body, two writers


class _Raw:
    """A Bicep/HCL expression written verbatim (a parameter reference)."""

    def __init__(self, text: str) -> None:
        self.text = text


class _Template:
    """A string of literal text and references (``Ref``), written as one interpolated string."""

    def __init__(self, parts: list[str | Ref]) -> None:
        self.parts = parts


class _Arm:
    """ARM template expressions (Syntax and expressions in ARM templates: a string that starts with ``[`` and ends
    with ``]`` is an expression; inside one a single quote is doubled,
    https://docs.azure.cn/en-us/azure-resource-manager/templates/template-expressions, "Escape characters")."""

    @staticmethod
    def param(name: str) -> str:
        return f"[parameters('{name}')]"

    @staticmethod
    def image_id(t: Target) -> str:
        parts = t.image_id_parts(SUBSCRIPTION_PLACEHOLDER)
        if len(parts) == 1:
            return parts[0]
        args = ", ".join("'" + p.replace("'", "''") + "'" if isinstance(p, str) else f"parameters('{p.expression}')"
                         for p in parts)
        return f"[concat({args})]"

    @staticmethod
    def ssh_path() -> str:
        return "[format('/home/{0}/.ssh/authorized_keys', parameters('adminUsername'))]"


class _Bicep:
    @staticmethod
    def param(name: str) -> _Raw:
        return _Raw(name)

    @staticmethod
    def image_id(t: Target) -> _Template:
        return _Template(t.image_id_parts(SUBSCRIPTION_PLACEHOLDER))  # the param of the same name

    @staticmethod
    def ssh_path() -> _Raw:
        return _Raw("'/home/${adminUsername}/.ssh/authorized_keys'")


def _security_profile(t: Target) -> dict | None:
    if t.security_type != "TrustedLaunch":
        return None
    return {"securityType": "TrustedLaunch", "uefiSettings": {"secureBootEnabled": t.secure_boot, "vTpmEnabled": True}}


def _os_profile(d: type[_Arm] | type[_Bicep], name_key: str, name: object) -> dict:
    """Admin user and SSH key: a VM from a Generalized gallery image needs an osProfile."""
    return {name_key: name, "adminUsername": d.param("adminUsername"),
            "linuxConfiguration": {"disablePasswordAuthentication": True, "ssh": {"publicKeys": [
                {"path": d.ssh_path(), "keyData": d.param("adminSshPublicKey")}]}}}


def _nic_configuration(t: Target, d: type[_Arm] | type[_Bicep], name: str) -> dict:
    return {"name": name, "properties": {
        "primary": True, "enableAcceleratedNetworking": t.accelerated_networking,
        "ipConfigurations": [{"name": "primary", "properties": {"primary": True,
                                                                "subnet": {"id": d.param("subnetId")}}}]}}


def _spot(t: Target) -> dict:
    return {"priority": "Spot", "evictionPolicy": "Deallocate", "billingProfile": {"maxPrice": -1}} if t.spot else {}


def _vm_resource(t: Target, d: type[_Arm] | type[_Bicep]) -> dict:
    props: dict = {
        "hardwareProfile": {"vmSize": d.param("vmSize")},
        "storageProfile": {"imageReference": {"id": d.image_id(t)}, "osDisk": {"createOption": "FromImage"}},
        "osProfile": _os_profile(d, "computerName", d.param("vmName")),
        "networkProfile": {"networkApiVersion": NETWORK_API_VERSION,
                           "networkInterfaceConfigurations": [_nic_configuration(t, d, "primary-nic")]},
    }
    if security := _security_profile(t):
        props["securityProfile"] = security
    props |= _spot(t)
    body: dict = {"name": d.param("vmName"), "location": d.param("location")}
    if plan := _plan(t):
        body["plan"] = plan
    return body | {"properties": props}


def _vmss_resource(t: Target, d: type[_Arm] | type[_Bicep]) -> dict:
    profile: dict = {
        "osProfile": _os_profile(d, "computerNamePrefix", d.param("vmssName")),
        "storageProfile": {"imageReference": {"id": d.image_id(t)}, "osDisk": {"createOption": "FromImage"}},
        "networkProfile": {"networkInterfaceConfigurations": [_nic_configuration(t, d, "primary-nic")]},
    }
    if security := _security_profile(t):
        profile["securityProfile"] = security
    profile |= _spot(t)
    body: dict = {"name": d.param("vmssName"), "location": d.param("location"),
                  "sku": {"name": d.param("vmSize"), "tier": "Standard", "capacity": d.param("instanceCount")}}
    if plan := _plan(t):
        body["plan"] = plan
    return body | {"properties": {
        "orchestrationMode": "Uniform",
        # InfiniBand joins only the VMs of one placement group (at most 100 VMs).
        "singlePlacementGroup": t.infiniband, "overprovision": False, "upgradePolicy": {"mode": "Manual"},
        "virtualMachineProfile": profile}}


def _parameters(t: Target, scale_set: bool) -> list[tuple[str, str, object, str, dict]]:
    """(name, type, default or None, description, constraints) of each template parameter."""
    name = t.image.name + ("-vmss" if scale_set else "-vm")
    out: list[tuple[str, str, object, str, dict]] = []
    if t.placeholders:
        out.append((SUBSCRIPTION_PLACEHOLDER, "string", None,
                    f"PLACEHOLDER: subscription that holds the gallery {t.image.gallery.gallery}", {}))
    out += [("vmssName" if scale_set else "vmName", "string", name, "", {}),
            ("location", "string", _Raw("resourceGroup().location"), "", {}),
            ("vmSize", "string", t.vm_size, "", {"allowed": list(t.size_options or (t.vm_size,))})]
    if scale_set:
        limit = {"maxValue": PLACEMENT_GROUP_MAX} if t.infiniband else {}
        out.append(("instanceCount", "int", t.instances, "", {"minValue": 1, **limit}))
    out += [("adminUsername", "string", "azureuser", "", {}),
            ("adminSshPublicKey", "string", None, "OpenSSH public key of adminUsername", {}),
            ("subnetId", "string", None,
             f"Resource id of your subnet (accelerated networking: {str(t.accelerated_networking).lower()})", {})]
    return out


def _render_arm(t: Target, scale_set: bool) -> str:
    """A complete ARM template; the notes ride in its ``metadata``."""
    params: dict = {}
    for name, kind, default, about, limits in _parameters(t, scale_set):
        spec: dict = {"type": kind}
        if default is not None:
            spec["defaultValue"] = f"[{default.text}]" if isinstance(default, _Raw) else default
        if "allowed" in limits:
            spec["allowedValues"] = limits["allowed"]
        spec |= {k: v for k, v in limits.items() if k != "allowed"}
        if about:
            spec["metadata"] = {"description": about}
        params[name] = spec
    kind = "virtualMachineScaleSets" if scale_set else "virtualMachines"
    body = (_vmss_resource if scale_set else _vm_resource)(t, _Arm)
    resource = {"type": f"Microsoft.Compute/{kind}", "apiVersion": VM_API_VERSION, **body}
    doc = {"$schema": ARM_SCHEMA, "contentVersion": "1.0.0.0",
           "metadata": {"image": t.image.name, "version": t.version or "latest", "notes": t.notes},
           "parameters": params, "resources": [resource]}
    return json.dumps(doc, indent=2) + "\n"


def render_arm(t: Target) -> str:
    return _render_arm(t, scale_set=False)


def render_vmss_arm(t: Target) -> str:
    return _render_arm(t, scale_set=True)


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


def _render_bicep(t: Target, scale_set: bool) -> str:
    lines = [_comments(t, "//").rstrip("\n")]
    for name, kind, default, about, limits in _parameters(t, scale_set):
        if about:
            lines.append(f"@description({_bicep_string(about)})")
        if "allowed" in limits:
            lines.append(f"@allowed({_bicep_value(limits['allowed'], 0)})")
        for key in ("minValue", "maxValue"):
            if key in limits:
                lines.append(f"@{key}({limits[key]})")
        tail = f" = {_bicep_value(default, 0)}" if default is not None else ""
        lines.append(f"param {name} {kind}{tail}")
    lines.append("")
    kind = "virtualMachineScaleSets" if scale_set else "virtualMachines"
    body = (_vmss_resource if scale_set else _vm_resource)(t, _Bicep)
    symbol = "vmss" if scale_set else "vm"
    lines.append(f"resource {symbol} 'Microsoft.Compute/{kind}@{VM_API_VERSION}' = {_bicep_value(body, 0)}")
    return "\n".join(lines) + "\n"


def render_bicep(t: Target) -> str:
    return _render_bicep(t, scale_set=False)


def render_vmss_bicep(t: Target) -> str:
    return _render_bicep(t, scale_set=True)


# ---------------------------------------------------------------- Terraform (azurerm)


def _tf_header(t: Target) -> list[str]:
    out = [_comments(t, "#").rstrip("\n"),
           "terraform {", "  required_providers {", "    azurerm = {", '      source  = "hashicorp/azurerm"',
           f'      version = "{AZURERM_VERSION}"', "    }", "  }", "}",
           'provider "azurerm" {', "  features {}", "}"]
    if t.placeholders:
        out += ['variable "azure_subscription_id" {',
                '  description = "PLACEHOLDER: subscription that holds the gallery"', "  type        = string", "}"]
    out += ['variable "resource_group_name" {', "  type = string", "}",
            'variable "location" {', "  type = string", "}",
            'variable "subnet_id" {', "  type = string", "}",
            'variable "admin_ssh_public_key" {', "  type = string", "}", ""]
    return out


def _tf_machine(t: Target, pad: str) -> list[str]:
    """Arguments azurerm_linux_virtual_machine and azurerm_linux_virtual_machine_scale_set share."""
    out = [f"{pad}source_image_id = {_hcl_string(t.image_id_parts('var.azure_subscription_id'))}",
           f'{pad}admin_username  = "azureuser"']
    if t.spot:
        out += [f'{pad}priority        = "Spot"', f'{pad}eviction_policy = "Deallocate"', f"{pad}max_bid_price   = -1"]
    if t.security_type == "TrustedLaunch":
        out += [f"{pad}# {_one_line(t.security_note)}", f"{pad}vtpm_enabled        = true",
                f"{pad}secure_boot_enabled = {str(t.secure_boot).lower()}"]
    out += [f"{pad}admin_ssh_key {{", f'{pad}  username   = "azureuser"',
            f"{pad}  public_key = var.admin_ssh_public_key", f"{pad}}}",
            f"{pad}os_disk {{", f'{pad}  caching              = "ReadWrite"',
            f'{pad}  storage_account_type = "Premium_LRS"', f"{pad}}}"]
    if plan := _plan(t):
        out += [f"{pad}plan {{", *(f"{pad}  {k} = {_hcl_string(v)}" for k, v in plan.items()), f"{pad}}}"]
    return out


def render_terraform(t: Target) -> str:
    """``azurerm_linux_virtual_machine`` with ``source_image_id`` (and the NIC's networking settings)."""
    out = _tf_header(t)
    out += ['resource "azurerm_network_interface" "vm" {',
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
            "  network_interface_ids = [azurerm_network_interface.vm.id]",
            *_tf_machine(t, "  "), "}"]
    return "\n".join(out) + "\n"


def render_vmss_terraform(t: Target) -> str:
    """``azurerm_linux_virtual_machine_scale_set`` (Uniform orchestration, per the azurerm docs' disclaimer)."""
    out = _tf_header(t)
    out += ['resource "azurerm_linux_virtual_machine_scale_set" "vmss" {',
            f"  name                   = {_hcl_string(t.image.name + '-vmss')}",
            "  resource_group_name    = var.resource_group_name",
            "  location               = var.location",
            f"  sku                    = {_hcl_string(t.vm_size)}",
            f"  instances              = {t.instances}",
            "  # InfiniBand joins only the VMs of one placement group (at most 100 VMs)",
            f"  single_placement_group = {str(t.infiniband).lower()}",
            "  overprovision          = false",
            '  upgrade_mode           = "Manual"',
            "  network_interface {", '    name                           = "primary"',
            "    primary                        = true",
            f"    accelerated_networking_enabled = {str(t.accelerated_networking).lower()}",
            "    ip_configuration {", '      name      = "primary"', "      primary   = true",
            "      subnet_id = var.subnet_id", "    }", "  }",
            *_tf_machine(t, "  "), "}"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- Azure Batch


def render_batch(t: Target) -> str:
    """A Batch pool (``az batch pool create --json-file``): ``imageReference``, ``nodeAgentSKUId`` and, for Trusted
    Launch, ``securityProfile`` (the REST names of azure-batch 15.1.0's models, ``VirtualMachineConfiguration``,
    ``SecurityProfile``, ``BatchUefiSettings``; its ``SecurityTypes`` value is ``trustedLaunch``)."""
    config: dict = {"imageReference": {"virtualMachineImageId": t.image_id()},
                    "nodeAgentSKUId": BATCH_NODE_AGENTS[t.image.os]}
    if t.security_type == "TrustedLaunch":
        config["securityProfile"] = {"securityType": "trustedLaunch", "uefiSettings": {
            "secureBootEnabled": t.secure_boot, "vTpmEnabled": True}}
    pool: dict = {
        "id": f"{t.image.name}-pool",
        "vmSize": t.vm_size,
        "virtualMachineConfiguration": config,
        "networkConfiguration": {"enableAcceleratedNetworking": t.accelerated_networking},
        "targetDedicatedNodes": 0 if t.spot else 1,
        "targetLowPriorityNodes": 1 if t.spot else 0,
        "taskSlotsPerNode": 1,
        "enableInterNodeCommunication": t.infiniband,
        "metadata": [{"name": "builder-notes", "value": " ".join(t.notes)}],
    }
    return json.dumps(pool, indent=2) + "\n"


# ---------------------------------------------------------------- CycleCloud
#
# Attributes from the CycleCloud node/nodearray reference (MicrosoftDocs/azure-docs
# articles/cyclecloud/cluster-references/node-nodearray-reference.md@ec17c7333f20): "ImageId | Resource ID of VM
# image"; SecurityType, EnableSecureBoot, EnableVTPM (8.5.0+); Azure.SinglePlacementGroup, Azure.MaxScaleSetSize;
# Interruptible, MaxPrice. The Slurm settings follow the cyclecloud-slurm cluster template's execute nodearrays
# (Azure/cyclecloud-slurm templates/slurm.txt@049346f6b1ce: Extends = nodearraybase, slurm.hpc, slurm.partition).


def _cyclecloud_lines(t: Target) -> list[str]:
    lines = [f"ImageId = {_one_line(t.image_id())}", f"MachineType = {_one_line(t.vm_size)}"]
    if t.spot:
        lines += ["Interruptible = true", "MaxPrice = -1"]
    if t.security_type == "TrustedLaunch":
        lines += [f"# {_one_line(t.security_note)} (CycleCloud 8.5.0+)", "SecurityType = TrustedLaunch",
                  f"EnableSecureBoot = {str(t.secure_boot).lower()}", "EnableVTPM = true"]
    if t.infiniband:
        lines += ["# InfiniBand joins only the VMs of one placement group: one scale set of at most 100 VMs",
                  "Azure.SinglePlacementGroup = true", f"Azure.MaxScaleSetSize = {PLACEMENT_GROUP_MAX}"]
    return lines


def render_cyclecloud(t: Target) -> str:
    """A CycleCloud cluster-template nodearray using the gallery image as ``ImageId``."""
    return "\n".join([_comments(t, "#").rstrip("\n"), f"[[nodearray {_one_line(t.image.name)}]]",
                      *_cyclecloud_lines(t)]) + "\n"


def render_vmss_cyclecloud(t: Target) -> str:
    """A nodearray for the cyclecloud-slurm cluster template: a Slurm partition on a scale set of the image."""
    name = _one_line(t.image.name)
    lines = [_comments(t, "#").rstrip("\n"),
             "# Add to the [cluster] of the cyclecloud-slurm template (templates/slurm.txt)",
             f"[[nodearray {name}]]", "Extends = nodearraybase", *_cyclecloud_lines(t), f"MaxCount = {t.instances}",
             "", "    [[[configuration]]]", f"    slurm.hpc = {str(t.infiniband).lower()}",
             f"    slurm.partition = {name}"]
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Target], str]] = {
    "id": render_id, "cli": render_cli, "bicep": render_bicep, "terraform": render_terraform, "arm": render_arm,
    "batch": render_batch, "cyclecloud": render_cyclecloud,
    "vmss-cli": render_vmss_cli, "vmss-arm": render_vmss_arm, "vmss-bicep": render_vmss_bicep,
    "vmss-terraform": render_vmss_terraform, "vmss-cyclecloud": render_vmss_cyclecloud,
}


def render(target: Target, fmt: str) -> str:
    if fmt not in RENDERERS:
        raise InputError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}", field="--format")
    if fmt in SCALE_SET_FORMATS and target.image.purpose != Purpose.train:
        raise InputError(f"'{fmt}' is a scale set for multi-node training; '{target.image.name}' is an "
                         f"{target.image.purpose.value} image (purpose: {target.image.purpose.value}); use one of: "
                         f"{', '.join(VM_FORMATS)}", field="--format")
    return RENDERERS[fmt](target)
