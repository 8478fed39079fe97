# Inputs of azure.pkr.hcl. Per-image values come from the var file `builder render --target azure` writes
# (<image>.pkrvars.json); identity values default to the environment. Nothing here is a secret.

# ------------------------------------------------------------------ identity
variable "auth_method" {
  type        = string
  default     = "cli"
  description = "cli (az login), oidc (GitHub Actions federated credential) or managed-identity."
  validation {
    condition     = contains(["cli", "oidc", "managed-identity"], var.auth_method)
    error_message = "The auth_method must be cli, oidc or managed-identity."
  }
}

variable "subscription_id" {
  type    = string
  default = env("AZURE_SUBSCRIPTION_ID")
}

variable "tenant_id" {
  type    = string
  default = env("AZURE_TENANT_ID")
}

variable "client_id" {
  type        = string
  default     = env("AZURE_CLIENT_ID")
  description = "Application (client) id of the federated identity (oidc) or a user-assigned managed identity."
}

variable "oidc_request_url" {
  type    = string
  default = env("ACTIONS_ID_TOKEN_REQUEST_URL")
}

variable "oidc_request_token" {
  type      = string
  default   = env("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
  sensitive = true
}

# ------------------------------------------------------------------ base image
variable "marketplace" {
  type = object({
    publisher = string
    offer     = string
    sku       = string
    version   = string
  })
  default     = null
  description = "Marketplace base image (DSVM); null for a layered build."
}

variable "plan_info" {
  type = object({
    name      = string
    product   = string
    publisher = string
  })
  default     = null
  description = "Purchase plan of the marketplace base, when it has one."
}

variable "base_gallery_image" {
  type = object({
    subscription   = string
    resource_group = string
    gallery_name   = string
    image_name     = string
    image_version  = string
  })
  default     = null
  description = "Gallery image version to build on (layered builds); null for a marketplace base."
}

# ------------------------------------------------------------------ build VM
variable "location" {
  type = string
}

variable "vm_size" {
  type = string
}

variable "os_disk_size_gb" {
  type    = number
  default = 128
}

variable "spot" {
  type    = bool
  default = false
}

variable "security_type" {
  type        = string
  default     = null
  description = "TrustedLaunch for images whose gallery definition requires it; null for Standard."
}

variable "virtual_network" {
  type = object({
    resource_group = string
    name           = string
    subnet         = string
  })
  default     = null
  description = "Existing VNet/subnet for the build VM (no public IP then); null: Packer creates a temporary one."
}

variable "timeout" {
  type    = string
  default = "3h"
}

# ------------------------------------------------------------------ output
variable "output" {
  type    = string
  default = "gallery"
  validation {
    condition     = contains(["gallery", "managed-image"], var.output)
    error_message = "The output must be gallery or managed-image."
  }
}

variable "gallery" {
  type = object({
    resource_group       = string
    gallery_name         = string
    image_name           = string
    storage_account_type = string
    shallow_replication  = bool
    exclude_from_latest  = bool
    end_of_life_date     = string
    target_regions       = list(object({ name = string, replicas = number }))
  })
}

variable "image_version" {
  type        = string
  description = "Gallery image version (YYYY.MMDD.N)."
}

variable "managed_image_name" {
  type    = string
  default = null
}

variable "azure_tags" {
  type        = map(string)
  default     = {}
  description = "Provenance tags on the build resources and the image."
}

# ------------------------------------------------------------------ provisioning
variable "ansible_playbook" {
  type = string
}

variable "ansible_vars_file" {
  type = string
}

variable "ansible_env_vars" {
  type    = list(string)
  default = []
}

variable "final_roles" {
  type        = list(string)
  description = "Roles (tags) run only after verification: the generalize step."
}

variable "wait_script" {
  type        = string
  description = "Local path of wait-for-apt.sh: the first step waits for cloud-init and the apt locks."
}

variable "verify_bundle" {
  type        = string
  description = "Local folder uploaded to the build VM with the verification suites."
}

variable "verify_remote_dir" {
  type    = string
  default = "/tmp/builder-verify"
}

variable "verify_command" {
  type        = string
  description = "Runs the verification suites on the build VM and writes junit.xml into verify_remote_dir."
}

variable "junit_file" {
  type        = string
  description = "Where the verification JUnit report is downloaded to."
}

variable "sbom_command" {
  type        = string
  description = "Writes the CycloneDX JSON SBOM of the build VM's dpkg packages to verify_remote_dir/sbom.cdx.json."
}

variable "sbom_file" {
  type        = string
  description = "Where the SBOM is downloaded to (next to junit_file)."
}

variable "manifest_file" {
  type = string
}
