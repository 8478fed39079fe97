"""Azure checks for one catalog image: credential, subscription, region, quota, rights, marketplace terms and the
gallery definition. Every call goes through the clients publishing uses (``builder.azure.clients``: the same
endpoint, TLS trust, credential and retry policy); the three ARM operations the SDKs installed here do not wrap
(permissions, marketplace agreements) are sent through the Compute client's own pipeline (``send_request``).

ARM operations (paths and fields from the Azure REST API reference, learn.microsoft.com/rest/api/...):

- Resource SKUs - List: ``GET /subscriptions/{s}/providers/Microsoft.Compute/skus?$filter=location eq '{l}'``
  (SDK ``resource_skus.list``, api-version 2021-07-01 as azure-mgmt-compute sends it): each size's ``family``
  and ``restrictions`` (``reasonCode`` ``NotAvailableForSubscription``).
- Usage - List: ``GET /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/usages`` (SDK ``usage.list``):
  ``value[].name.value`` (a family such as ``standardNDSH100v5Family``, or ``cores``: Total Regional vCPUs),
  ``currentValue``, ``limit``. A VM must fit both the family's and the regional vCPU quota (Microsoft Learn,
  "Virtual machine vCPU quotas").
- Permissions - List For Resource Group: ``GET /subscriptions/{s}/resourceGroups/{rg}/providers/
  Microsoft.Authorization/permissions?api-version=2022-04-01``: ``value[].actions`` / ``notActions`` of the
  caller's role assignments that apply at that scope (inherited ones included).
- Marketplace Agreements - Get: ``GET /subscriptions/{s}/providers/Microsoft.MarketplaceOrdering/offerTypes/
  virtualmachine/publishers/{publisher}/offers/{product}/plans/{plan}/agreements/current?api-version=2021-01-01``:
  ``properties.accepted``.
- Gallery Images - Get (SDK ``gallery_images.get``): compared with the catalog by ``builder.azure.gallery``'s
  ``compare_definition`` (hyperVGeneration, features incl. SecurityType, osState, osType, architecture,
  identifier), the check ``builder build``/``publish`` make before they write.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from builder.doctor.checks import Check, missed, passed

ARM_SCOPE = "https://management.azure.com/.default"
PERMISSIONS_API = "2022-04-01"
AGREEMENTS_API = "2021-01-01"
TOTAL_REGIONAL = "cores"
QUOTA_FIX = ("request a quota increase for {what} in {region} to at least {wanted} vCPUs (Azure portal: Quotas > "
             "Compute, or `az quota update`); or choose another {field}")
LOGIN_FIX = ("sign in: `az login` (the default), a GitHub OIDC federated credential (AZURE_CLIENT_ID, "
             "AZURE_TENANT_ID) or a managed identity; see docs/azure.md, Identity and role assignments")

# Actions the project's own code performs in the gallery's resource group (builder/azure/gallery.py
# ensure_definition, builder/azure/publish.py, Packer's capture into the gallery).
GALLERY_ACTIONS = {
    "Microsoft.Compute/galleries/write": "creates the gallery when missing (ensure_definition)",
    "Microsoft.Compute/galleries/images/write": "creates or updates the image definition (ensure_definition)",
    "Microsoft.Compute/galleries/images/versions/write": "creates the image version and sets its tags (publish, "
                                                         "Packer's capture, builder.sbom_sha256)",
}
# What Packer's azure-arm builder creates in its temporary resource group (docs/azure.md, Identity and role
# assignments): only an assignment on the subscription covers that group, and it shows at the gallery's group too.
PACKER_ACTIONS = {
    "Microsoft.Resources/subscriptions/resourceGroups/write": "Packer creates a temporary pkr-Resource-Group-*",
    "Microsoft.Compute/virtualMachines/write": "Packer creates the build VM in it",
}

Say = Callable[[str], None]


def _describe(exc: Exception) -> str:
    from builder.azure.errors import describe

    return describe(exc)[:300]


def _pattern(action: str) -> re.Pattern:
    return re.compile(re.escape(action).replace(r"\*", ".*"), re.IGNORECASE)


def allowed(action: str, permissions: list[dict[str, Any]]) -> bool:
    """Whether one of the permission entries grants ``action``: it matches one of the entry's ``actions``
    (``*`` a wildcard, case-insensitive) and none of that entry's ``notActions``."""
    for entry in permissions:
        grants = any(_pattern(a).fullmatch(action) for a in entry.get("actions") or [])
        if grants and not any(_pattern(n).fullmatch(action) for n in entry.get("notActions") or []):
            return True
    return False


def _get(compute, url: str, api_version: str, params: dict[str, str] | None = None):
    """A raw ARM GET through the Compute client's pipeline; returns ``(status, JSON body)``."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    response = compute.send_request(HttpRequest("GET", url, params={"api-version": api_version, **(params or {})}))
    if response.status_code == 404:
        return 404, None
    if response.status_code >= 400:
        raise HttpResponseError(response=response)
    return response.status_code, response.json()


def _pages(compute, url: str, api_version: str) -> list[dict[str, Any]] | None:
    """Every ``value`` item of a paged list (following ``nextLink``); None when the scope answers 404."""
    status, body = _get(compute, url, api_version)
    if status == 404:
        return None
    items = list(body.get("value") or [])
    link = body.get("nextLink")
    while link:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        response = compute.send_request(HttpRequest("GET", link))
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        page = response.json()
        items += page.get("value") or []
        link = page.get("nextLink")
    return items


def settings_check(env: dict[str, str] | None = None, subscription: str | None = None) -> tuple[Check, Any]:
    """The subscription and endpoint settings (``settings_from_env``, as publishing reads them)."""
    from builder.azure.settings import settings_from_env
    from builder.errors import InputError

    try:
        settings = settings_from_env(env, subscription_id=subscription)
    except InputError as exc:
        return missed("subscription", str(exc), "export AZURE_SUBSCRIPTION_ID=<id> (`az account show --query id "
                      "-o tsv`), or fix the variable named", "azure"), None
    where = settings.base_url or "https://management.azure.com"
    return passed("subscription", f"{settings.subscription_id} at {where}", "azure"), settings


def credential_check(settings) -> Check:
    """A token for ARM from the credential the clients use (DefaultAzureCredential; the static token for the
    local emulator). Only the error's type is shown: azure-identity's messages list every credential it tried."""
    try:
        token = settings.get_credential().get_token(ARM_SCOPE)
    except Exception as exc:  # ClientAuthenticationError, CredentialUnavailableError, a CLI that is not signed in
        return missed("credential", f"no token for Azure Resource Manager ({type(exc).__name__})", LOGIN_FIX,
                      "azure")
    if not getattr(token, "token", None):
        return missed("credential", "the credential returned an empty token", LOGIN_FIX, "azure")
    kind = type(settings.get_credential()).__name__
    return passed("credential", f"{kind}: token for {ARM_SCOPE}", "azure")


def subscription_check(settings) -> Check:
    """The subscription is readable with that token (``resource_groups.list``, its first page)."""
    from builder.azure.clients import resource_client

    try:
        groups = resource_client(settings).resource_groups.list()
        count = sum(1 for _ in zip(range(1000), groups, strict=False))
    except Exception as exc:
        return missed("subscription readable", _describe(exc), "check AZURE_SUBSCRIPTION_ID and give the identity "
                      "a role on the subscription (Reader at least; the build needs Contributor)", "azure")
    return passed("subscription readable", f"{count} resource group(s) listed", "azure")


def region_check(model) -> tuple[Check, str | None]:
    from builder.catalog.reference_data import normalise_region

    region = normalise_region(model.build.region)
    if region is None:
        return missed("region", f"build.region {model.build.region!r} is not in builder/data/regions.yaml",
                      "set build.region to a region of builder/data/regions.yaml", "azure"), None
    return passed("region", f"{region} (build.region)", "azure"), region


def _sizes(model) -> list[tuple[str, str, bool]]:
    """``(size, role, spot)``: the build VM, and each target size when the hardware suite runs."""
    sizes = [(model.build.vm_size, "build VM", model.build.spot)]
    if "hardware" in model.tests.suites:
        sizes += [(s, "hardware validation", False) for s in model.target_skus if s != model.build.vm_size]
    return sizes


def _fits(name: str, usage: dict[str, Any], need: int, region: str, role: str, size: str,
          field: str) -> Check:
    current, limit = int(usage.get("currentValue") or 0), int(usage.get("limit") or 0)
    label = (usage.get("name") or {}).get("localizedValue") or (usage.get("name") or {}).get("value")
    family = (usage.get("name") or {}).get("value")
    free = limit - current
    found = f"{label} ({family}) in {region}: {current}/{limit} used, {free} free; {role} {size} needs {need}"
    if free >= need:
        return passed(name, found, "azure")
    return missed(name, found, QUOTA_FIX.format(what=family, region=region, wanted=current + need, field=field),
                  "azure")


def quota_checks(settings, catalog, model, region: str, say: Say) -> list[Check]:
    """vCPUs of the build size and of each hardware-validation size (images/skus.yaml) against the family's and
    the region's free quota (Compute usages); the family from Resource SKUs."""
    from builder.azure.clients import compute_client

    say(f"reading VM sizes and vCPU quota in {region}")
    compute = compute_client(settings)
    try:
        skus = {}
        for item in compute.resource_skus.list(filter=f"location eq '{region}'"):
            data = item.as_dict()
            if str(data.get("resourceType", "")).lower() == "virtualmachines":
                skus[str(data.get("name", "")).lower()] = data
        usages = {str((u.as_dict().get("name") or {}).get("value", "")).lower(): u.as_dict()
                  for u in compute.usage.list(region)}
    except Exception as exc:
        return [missed("quota", f"cannot read Resource SKUs / usages in {region}: {_describe(exc)}",
                       "give the identity Reader on the subscription (Microsoft.Compute/skus/read, "
                       "Microsoft.Compute/locations/usages/read)", "azure")]
    checks = []
    for size, role, spot in _sizes(model):
        name = f"quota {size} ({role})"
        field = "build.region or build.vm_size" if role == "build VM" else "build.region or target_skus"
        facts = catalog.skus.get(size)
        if facts is None:
            checks.append(missed(name, f"{size} not in images/skus.yaml", "add the size to images/skus.yaml",
                                 "azure"))
            continue
        sku = skus.get(size.lower())
        if sku is None:
            checks.append(missed(name, f"{size} is not offered in {region} (Resource SKUs)",
                                 f"choose another {field}", "azure"))
            continue
        blocked = [r for r in sku.get("restrictions") or []
                   if r.get("reasonCode") == "NotAvailableForSubscription" and r.get("type") == "Location"]
        if blocked:
            checks.append(missed(name, f"{size} is not available to this subscription in {region} "
                                 "(NotAvailableForSubscription)", f"ask Azure support to enable it, or choose "
                                 f"another {field}", "azure"))
            continue
        if spot:
            checks.append(passed(name, f"{size}: spot build, family quota does not apply; spot quota not checked",
                                 "azure"))
            continue
        family = str(sku.get("family") or "")
        usage = usages.get(family.lower())
        if usage is None:
            checks.append(missed(name, f"no vCPU quota entry for family {family or '?'} in {region}",
                                 QUOTA_FIX.format(what=family or size, region=region, wanted=facts.vcpus,
                                                  field=field), "azure"))
            continue
        checks.append(_fits(name, usage, facts.vcpus, region, role, size, field))
        total = usages.get(TOTAL_REGIONAL)
        if total is not None:
            regional = _fits(f"regional vCPUs {size} ({role})", total, facts.vcpus, region, role, size, field)
            if not regional.ok:
                checks.append(regional)
    return checks


def permission_check(settings, model, target: str, say: Say) -> Check:
    """The actions build and publish perform, granted at the gallery's resource group."""
    from builder.azure.clients import compute_client

    rg = model.gallery.resource_group
    say(f"reading your permissions on resource group {rg}")
    url = (f"/subscriptions/{settings.subscription_id}/resourceGroups/{rg}/providers/Microsoft.Authorization/"
           "permissions")
    name = f"rights on {rg}"
    try:
        permissions = _pages(compute_client(settings), url, PERMISSIONS_API)
    except Exception as exc:
        return missed(name, f"cannot read permissions: {_describe(exc)}", "give the identity "
                      "Microsoft.Authorization/permissions/read (every built-in role has it) on the group", "azure")
    if permissions is None:
        return passed(name, f"resource group {rg} does not exist (will be created: that needs "
                      "Microsoft.Resources/subscriptions/resourceGroups/write on the subscription, not checked)",
                      "azure")
    wanted = dict(GALLERY_ACTIONS)
    if target == "azure":
        wanted.update(PACKER_ACTIONS)
    lacking = [a for a in wanted if not allowed(a, permissions)]
    if not lacking:
        return passed(name, f"{len(wanted)} actions granted: {', '.join(wanted)}", "azure")
    why = "; ".join(f"{a} ({wanted[a]})" for a in lacking)
    return missed(name, f"not granted at {rg}: {why}", f"assign Contributor on resource group {rg} (and on the "
                  "subscription for Packer's temporary group), or a custom role with these actions", "azure")


def terms_check(settings, model, say: Say) -> Check | None:
    """Marketplace terms of a base with a purchase plan; None when the base has no plan."""
    from builder.azure.clients import compute_client

    base = model.base.marketplace
    if base is None or base.plan is None:
        return None
    plan = base.plan
    name = f"terms {plan.publisher}:{plan.product}:{plan.name}"
    fix = f"az vm image terms accept --publisher {plan.publisher} --offer {plan.product} --plan {plan.name}"
    say(f"reading marketplace terms of {plan.publisher}:{plan.product}:{plan.name}")
    url = (f"/subscriptions/{settings.subscription_id}/providers/Microsoft.MarketplaceOrdering/offerTypes/"
           f"virtualmachine/publishers/{plan.publisher}/offers/{plan.product}/plans/{plan.name}/agreements/current")
    try:
        status, body = _get(compute_client(settings), url, AGREEMENTS_API)
    except Exception as exc:
        return missed(name, f"cannot read the terms: {_describe(exc)}", fix, "azure")
    if status == 404 or body is None:
        return missed(name, "no such plan in the marketplace (404)", "check base.marketplace.plan in the catalog",
                      "azure")
    if (body.get("properties") or {}).get("accepted") is True:
        return passed(name, "accepted for this subscription", "azure")
    return missed(name, "not accepted for this subscription", fix, "azure")


def definition_check(settings, catalog, image: str, model, say: Say) -> Check:
    """The gallery image definition against the catalog's gallery section; a missing one will be created."""
    from azure.core.exceptions import ResourceNotFoundError

    from builder.azure.clients import compute_client
    from builder.azure.gallery import Destination, compare_definition, definition_body

    dest = Destination.of(model)
    name = f"definition {dest.gallery}/{dest.definition}"
    say(f"reading image definition {dest.gallery}/{dest.definition}")
    try:
        actual = compute_client(settings).gallery_images.get(dest.resource_group, dest.gallery,
                                                             dest.definition).as_dict()
    except ResourceNotFoundError:
        return passed(name, "does not exist: will be created from the catalog", "azure")
    except Exception as exc:
        return missed(name, f"cannot read it: {_describe(exc)}", "give the identity Reader on the gallery", "azure")
    problems, _updates = compare_definition(catalog.get(image), definition_body(model, dest.location), actual)
    if not problems:
        props = actual.get("properties") or {}
        return passed(name, f"compatible ({props.get('hyperVGeneration')}, "
                      f"{_security_type(props.get('features')) or 'Standard'})", "azure")
    return missed(name, "; ".join(p.message.split("; it cannot")[0] for p in problems),
                  "these properties cannot change: set a new gallery.definition name in the catalog (or change the "
                  "catalog to match)", "azure")


def _security_type(features: Any) -> str | None:
    for item in features or []:
        if str(item.get("name", "")).lower() == "securitytype":
            return item.get("value")
    return None


def azure_checks(catalog, image: str, target: str, say: Say, env: dict[str, str] | None = None,
                 subscription: str | None = None) -> list[Check]:
    """Every Azure check for ``image``, in order; stops after a miss the later checks depend on."""
    model = catalog.model(image)
    check, settings = settings_check(env, subscription)
    checks = [check]
    if settings is None:
        return checks
    say("getting a token for Azure Resource Manager")
    checks.append(credential_check(settings))
    if not checks[-1].ok:
        return checks
    checks.append(subscription_check(settings))
    if not checks[-1].ok:
        return checks
    region_result, region = region_check(model)
    checks.append(region_result)
    if region is not None and target == "azure":
        checks += quota_checks(settings, catalog, model, region, say)
    checks.append(permission_check(settings, model, target, say))
    terms = terms_check(settings, model, say) if target == "azure" else None
    if terms is not None:
        checks.append(terms)
    checks.append(definition_check(settings, catalog, image, model, say))
    return checks
