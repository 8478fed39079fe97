"""ARM template deployments into a resource group, as Azure Resource Manager answers them.

``PUT|GET .../resourcegroups/{rg}/providers/Microsoft.Resources/deployments/{name}``,
``POST .../deployments/{name}/validate`` and the deployment's ``Azure-AsyncOperation`` status
(``.../deployments/{name}/operationStatuses/{op}``); the resources a deployment created answer ``GET`` at their ids.

Two stages, as ARM has them:
* preflight (PUT and validate, answered at once, 400): the template and its parameters (``$schema``,
  ``contentVersion``, parameter names, values, types, ``allowedValues``, expressions) -> ``InvalidTemplate``;
* the deployment itself (PUT only, through the long-running operation): each resource is created in order; a
  virtual machine or scale set from a gallery image is checked as the Compute resource provider does; a failure
  fails the deployment with ``DeploymentFailed`` and the resource's own error in ``details`` (ARM's shape:
  hashicorp/packer-plugin-azure#307, Azure/RDS-Templates#580).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
import re
import uuid
from typing import Any

from builder.catalog import reference_data
from builder.emulator.routes_arm import (
    RESOURCES_API,
    RG,
    _body,
    _now,
    _retry_after,
    advance,
    start_operation,
)
from builder.emulator.server import ArmError, Request, Response, Router
from builder.emulator.template import Scope, TemplateError, bind_parameters, evaluate, resource_id

# azure-mgmt-resource-deployments 2.0.0 (DeploymentsMgmtClient) sends api-version 2026-06-01
# (.venv/.../azure/mgmt/resource/deployments/_configuration.py); azure-mgmt-resource 25.0.0 moved deployments
# there (its METADATA, "25.0.0 (2026-02-04)"). Older clients sent the Resources api-versions.
DEPLOY_API = RESOURCES_API | {"2026-06-01"}
# azure-mgmt-compute 39.0.0 gets virtual machines and scale sets with api-version 2026-04-01
# (.venv/.../azure/mgmt/compute/operations/_operations.py); the other versions are those routes_marketplace takes.
VM_API = frozenset({"2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01", "2025-11-01", "2026-04-01"})
DEPLOYMENT = RG + r"/providers/Microsoft\.Resources/deployments/(?P<name>[^/]+)"
STATUS = DEPLOYMENT + r"/operationStatuses/(?P<op>[^/]+)"
RESOURCE = RG + r"/providers/(?P<rest>[^/]+/[^/]+/[^/]+(?:/[^/]+/[^/]+)*)"
GALLERY_IMAGE = re.compile(r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Compute/galleries/[^/]+"
                           r"/images/[^/]+(?P<version>/versions/(?P<name>[^/]+))?", re.IGNORECASE)
VM_TYPES = ("microsoft.compute/virtualmachines", "microsoft.compute/virtualmachinescalesets")
DEPLOYMENT_FAILED = ("At least one resource deployment operation failed. Please list deployment operations for "
                     "details. Please see https://aka.ms/arm-deployment-operations for usage details.")


class TemplateArmError(ArmError):
    """400 InvalidTemplate with ARM's ``additionalInfo`` (type TemplateViolation: Azure/SimuLand#39)."""

    def __init__(self, exc: TemplateError) -> None:
        super().__init__(400, "InvalidTemplate", exc.message)
        self.path = exc.path

    def response(self) -> Response:
        response = super().response()
        response.body["error"]["additionalInfo"] = [{"type": "TemplateViolation", "info": {
            "lineNumber": 0, "linePosition": 0, "path": self.path}}]
        return response


def _retry(req: Request, op: dict[str, Any]) -> str:
    """Whole seconds left (0 when the operation is about to end); the configured Retry-After when one is set."""
    if req.emulator.config.retry_after is not None:
        return _retry_after(req, op["end"] - _now(), integer=True)
    return str(math.ceil(max(op["end"] - _now(), 0)))


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


def _ids(m: re.Match) -> tuple[str, str]:
    rg_id = f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}"
    return rg_id, f"{rg_id}/providers/Microsoft.Resources/deployments/{m['name']}"


# ------------------------------------------------------------------ preflight


def _preflight(req: Request, m: re.Match) -> tuple[dict[str, Any], list[dict[str, Any]], Scope]:
    """Check the request and template; returns (deployment properties, evaluated resources, scope)."""
    rg_id, _ = _ids(m)
    group = req.emulator.store.get(rg_id)
    if group is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{m['rg']}' could not be found.")
    props = _body(req).get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content was invalid and could not be "
                       "deserialized: 'properties' is required.")
    if "templateLink" in props or "parametersLink" in props:
        raise ArmError(400, "InvalidRequestContent", "The emulator takes only an inline 'template' and inline "
                       "'parameters' (templateLink and parametersLink are not emulated).")
    if props.get("mode", "Incremental") != "Incremental":
        raise ArmError(400, "InvalidRequestContent", f"Deployment mode '{props.get('mode')}' is not emulated; "
                       "only 'Incremental' is.")
    template = props.get("template")
    scope = Scope(m["sub"], m["rg"], group["location"])
    try:
        resources = _check_template(template, props.get("parameters"), scope)
    except TemplateError as exc:
        raise TemplateArmError(exc) from None
    return props, resources, scope


def _check_template(template: Any, supplied: Any, scope: Scope) -> list[dict[str, Any]]:
    if not isinstance(template, dict):
        raise TemplateError("The deployment's 'template' must be a JSON object.")
    # ARM template structure (learn.microsoft.com/azure/azure-resource-manager/templates/syntax, "Template
    # format"): $schema, contentVersion and resources are required (languageVersion 2.0's resources object is not
    # emulated). The wording of these messages is the emulator's own; the code InvalidTemplate is ARM's.
    for key in ("$schema", "contentVersion", "resources"):
        if key not in template:
            raise TemplateError(f"The template is missing the required property '{key}'. Please see "
                                "https://aka.ms/arm-syntax for usage details.", key)
    if not isinstance(template["resources"], list):
        raise TemplateError("The template property 'resources' must be an array.", "resources")
    variables = template.get("variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError("The template property 'variables' must be an object.", "variables")
    scope.variables = {k.lower(): v for k, v in variables.items()}
    bind_parameters(template.get("parameters"), supplied, scope)
    resources = [r for r in (_resource(r, i, scope) for i, r in enumerate(template["resources"])) if r]
    for name, output in (template.get("outputs") or {}).items():
        if isinstance(output, dict) and "value" in output:
            _evaluate_in(output["value"], scope, f"outputs.{name}")
    return resources


def _evaluate_in(value: Any, scope: Scope, path: str) -> Any:
    try:
        return evaluate(value, scope)
    except TemplateError as exc:
        exc.path = exc.path or path
        raise


def _resource(raw: Any, index: int, scope: Scope) -> dict[str, Any] | None:
    path = f"resources[{index}]"
    if not isinstance(raw, dict):
        raise TemplateError(f"The template resource at index {index} must be an object.", path)
    rtype, api = raw.get("type"), raw.get("apiVersion")
    # type and apiVersion must be literals (template-expressions, "Compile-time constrains")
    if not isinstance(rtype, str) or not isinstance(api, str) or rtype.startswith("[") or api.startswith("["):
        raise TemplateError(f"The template resource at index {index} must have a literal 'type' and "
                            "'apiVersion'.", path)
    for unsupported in ("copy", "resources", "scope"):
        if unsupported in raw:
            raise TemplateError(f"The template resource at index {index} uses '{unsupported}', which the emulator "
                                "does not evaluate.", f"{path}.{unsupported}")
    if "condition" in raw and _evaluate_in(raw["condition"], scope, f"{path}.condition") is False:
        return None
    _evaluate_in(raw.get("dependsOn", []), scope, f"{path}.dependsOn")
    body = _evaluate_in({k: v for k, v in raw.items() if k not in ("type", "apiVersion", "dependsOn", "condition")},
                        scope, path)
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise TemplateError(f"The template resource at index {index} has no 'name'.", f"{path}.name")
    names = name.split("/")
    if len(names) != len(rtype.split("/")) - 1:
        # ARM's text: learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-invalid-template
        raise TemplateError(f"The template resource '{name}' for type '{rtype}' has incorrect segment lengths. A "
                            "nested resource type must have identical number of segments as its resource name. A "
                            "root resource type must have segment length one greater than its resource name.", path)
    body["id"] = resource_id(scope.subscription, scope.resource_group, rtype, names)
    body["type"] = rtype
    body["_apiVersion"] = api
    return body


# ------------------------------------------------------------------ Compute checks


def _gallery_error(image_id: str, region: str) -> dict[str, str]:
    # Compute's answer for an image it cannot use in the region (pulumi/pulumi-aws#5129, 404 GalleryImageNotFound)
    return {"code": "GalleryImageNotFound", "target": "imageReference",
            "message": f"The gallery image {image_id} is not available in {region} region. Please contact image "
                       "owner to replicate to this region, or change your requested region."}


def _version_key(resource: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(p) for p in resource["name"].split(".") if p.isdigit())


def _check_compute(req: Request, resource: dict[str, Any], scope: Scope) -> dict[str, str] | None:
    """The Compute RP's errors for a VM or scale set from a gallery image in this emulator's store; None: fine."""
    props = resource.get("properties") or {}
    profile = props if resource["type"].lower() == VM_TYPES[0] else (props.get("virtualMachineProfile") or {})
    image_ref = ((profile.get("storageProfile") or {}).get("imageReference") or {}).get("id") or ""
    match = GALLERY_IMAGE.fullmatch(image_ref)
    if not match:
        return None  # marketplace, managed images and attached disks are not checked
    store = req.emulator.store
    region = reference_data.normalise_region(str(resource.get("location") or scope.location)) or scope.location
    definition_id = image_ref[:match.start("version")] if match["version"] else image_ref
    definition = store.get(definition_id)
    if definition is None:
        return _gallery_error(image_ref, region)
    if match["version"]:
        version = store.get(image_ref)
    else:  # a definition id: its newest version not excluded from latest
        candidates = [v for v in store.children(definition_id, "versions")
                      if not v["properties"].get("publishingProfile", {}).get("excludeFromLatest")
                      and v["properties"].get("provisioningState") == "Succeeded"]
        version = max(candidates, key=_version_key, default=None)
    if version is None or version["properties"].get("provisioningState") != "Succeeded":
        return _gallery_error(image_ref, region)
    regions = {reference_data.normalise_region(r.get("name", "")) for r in
               version["properties"].get("publishingProfile", {}).get("targetRegions", [])}
    if region not in regions:
        return _gallery_error(image_ref, region)
    has_os_profile = bool(profile.get("osProfile"))
    state = definition["properties"].get("osState")
    if state == "Generalized" and not has_os_profile:
        # kevoreilly/CAPEv2#2250: "(InvalidParameter) Required parameter 'osProfile' is missing (null)"
        return {"code": "InvalidParameter", "target": "osProfile",
                "message": "Required parameter 'osProfile' is missing (null)."}
    if state == "Specialized" and has_os_profile:
        # hashicorp/packer-plugin-azure#307 (a deployment): InvalidParameter, target osProfile
        return {"code": "InvalidParameter", "target": "osProfile", "message": "Parameter 'osProfile' is not allowed."}
    features = {str(f.get("name", "")).lower(): str(f.get("value", ""))
                for f in definition["properties"].get("features") or [] if isinstance(f, dict)}
    wanted = str((profile.get("securityProfile") or {}).get("securityType") or "Standard")
    if features.get("securitytype", "").lower() == "trustedlaunch" and wanted.lower() != "trustedlaunch":
        # An image definition of security type TrustedLaunch makes versions for "Trusted Launch VMs only"
        # (MicrosoftDocs/azure-docs articles/virtual-machines/trusted-launch-portal.md@0064c4ba, "Trusted Launch VM
        # images"); Compute's answer, also without a securityProfile: kubermatic/machine-controller#2013,
        # hashicorp/terraform-provider-azurerm#23148. Other SecurityType values are not checked.
        return {"code": "BadRequest", "message": "The provided gallery image only supports creation of VMs and VM "
                "Scale Sets with 'TrustedLaunch' security type."}
    return None


# ------------------------------------------------------------------ handlers


def _output_parameters(definitions: dict[str, Any], scope: Scope) -> dict[str, Any]:
    out = {}
    for name, definition in definitions.items():
        ptype = str(definition.get("type", ""))
        entry: dict[str, Any] = {"type": ptype[:1].upper() + ptype[1:]}
        if not ptype.lower().startswith("secure"):  # the emulator does not echo secure values
            entry["value"] = scope.parameters.get(name.lower())
        out[name] = entry
    return out


def _template_hash(template: Any) -> str:
    return str(int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16], 16))


def _render(resource: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in copy.deepcopy(resource).items() if not k.startswith("_")}
    if body.get("properties", {}).get("provisioningState") == "Failed" and resource.get("_error"):
        body["properties"]["error"] = resource["_error"]
    return body


def deployment_put(req: Request, m: re.Match) -> Response:
    req.api_version(DEPLOY_API)
    advance(req)
    props, resources, scope = _preflight(req, m)
    store = req.emulator.store
    rg_id, dep_id = _ids(m)
    now = _now()
    created, details = [], []
    for resource in resources:
        error = _check_compute(req, resource, scope) if resource["type"].lower() in VM_TYPES else None
        if error:
            details.append(error)
            continue
        stored = {k: v for k, v in resource.items() if not k.startswith("_")}
        stored["name"] = resource["name"].split("/")[-1]
        stored.setdefault("properties", {})
        stored["properties"] = {**stored["properties"], "provisioningState": "Succeeded"}
        stored["_deployment"] = dep_id
        store.put(stored)
        created.append({"id": stored["id"]})
    error = {"code": "DeploymentFailed", "message": DEPLOYMENT_FAILED, "details": details} if details else None
    existing = store.get(dep_id)
    template = props["template"]
    deployment = {
        "id": dep_id, "name": m["name"], "type": "Microsoft.Resources/deployments",
        "properties": {"provisioningState": "Running", "mode": "Incremental", "timestamp": _iso(now),
                       "correlationId": str(uuid.uuid4()), "templateHash": _template_hash(template),
                       "parameters": _output_parameters(template.get("parameters") or {}, scope),
                       "outputResources": created},
        "_error": error}
    store.put(deployment)
    op = start_operation(req, dep_id, scope.location, "deployment", req.emulator.config.operation_delay, error)
    store.save()
    status = (f"{req.emulator.base_url}{rg_id}/providers/Microsoft.Resources/deployments/{m['name']}"
              f"/operationStatuses/{op['id']}?api-version={op['api']}")
    headers = {"Azure-AsyncOperation": status, "Retry-After": _retry(req, op)}
    return Response(200 if existing else 201, _render(deployment), headers)


def deployment_validate(req: Request, m: re.Match) -> Response:
    req.api_version(DEPLOY_API)
    advance(req)
    props, resources, scope = _preflight(req, m)
    _, dep_id = _ids(m)
    template = props["template"]
    return Response(200, {"id": dep_id, "name": m["name"], "type": "Microsoft.Resources/deployments", "properties": {
        "provisioningState": "Succeeded", "mode": "Incremental", "timestamp": _iso(_now()),
        "correlationId": str(uuid.uuid4()), "templateHash": _template_hash(template),
        "parameters": _output_parameters(template.get("parameters") or {}, scope),
        "validatedResources": [{"id": r["id"]} for r in resources]}})


def deployment_get(req: Request, m: re.Match) -> Response:
    req.api_version(DEPLOY_API)
    advance(req)
    deployment = req.emulator.store.get(_ids(m)[1])
    if deployment is None:
        # a 404 (the SDK raises ResourceNotFoundError); ARM's own code for a missing deployment was not found in a
        # source, so the emulator's generic ResourceNotFound
        raise ArmError(404, "ResourceNotFound", f"Deployment '{m['name']}' could not be found.")
    return Response(200, _render(deployment))


def deployment_status(req: Request, m: re.Match) -> Response:
    req.api_version(DEPLOY_API)
    advance(req)
    op = req.emulator.store.operations.get(m["op"])
    if op is None or op["resource"].lower() != _ids(m)[1].lower():
        raise ArmError(404, "ResourceNotFound", f"The operation '{m['op']}' was not found.")
    if op["status"] == "InProgress":
        return Response(200, {"status": "Running"}, {"Retry-After": _retry(req, op)})
    body: dict[str, Any] = {"status": op["status"]}
    if op.get("error"):
        body["error"] = op["error"]
    return Response(200, body)


def resource_get(req: Request, m: re.Match) -> Response:
    """A resource a deployment created (any api-version for other providers; Compute's for VMs/scale sets)."""
    resource = req.emulator.store.get(f"/subscriptions/{m['sub']}/resourceGroups/{m['rg']}/providers/{m['rest']}")
    if resource is None or "_deployment" not in resource:
        raise ArmError(404, "ResourceNotFound", f"The Resource '{m['rest']}' under resource group '{m['rg']}' was "
                       "not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix")
    if resource["type"].lower() in VM_TYPES:
        req.api_version(VM_API)
    elif not req.query.get("api-version"):
        req.api_version(frozenset())
    return Response(200, _render(resource))


def register(router: Router) -> None:
    router.add("PUT", DEPLOYMENT, deployment_put)
    router.add("GET", DEPLOYMENT, deployment_get)
    router.add("POST", DEPLOYMENT + "/validate", deployment_validate)
    router.add("GET", STATUS, deployment_status)
    router.add("GET", RESOURCE, resource_get)
