# Builds one catalog image on Azure: DSVM marketplace base (or a gallery version for layered builds) ->
# ansible/image.yml -> verification suites on the build VM (JUnit downloaded) -> CycloneDX SBOM of the dpkg
# packages (downloaded) -> generalize -> waagent
# deprovision -> captured as a staging gallery version (excluded from latest) or a managed image.
# Static file: every per-image value arrives through the var file `builder render --target azure` writes.

packer {
  required_version = ">= 1.14.0"
  required_plugins {
    azure = {
      source  = "github.com/hashicorp/azure"
      version = "~> 2"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = "~> 1"
    }
  }
}

locals {
  oidc          = var.auth_method == "oidc"
  gallery_out   = var.output == "gallery"
  trusted       = var.security_type == "TrustedLaunch"
  verify_result = "${var.verify_remote_dir}/exit-code"
}

source "azure-arm" "image" {
  # Identity: Azure CLI, GitHub OIDC federated credential or managed identity. Never a secret in a file.
  use_azure_cli_auth = var.auth_method == "cli"
  subscription_id    = var.subscription_id
  # Managed identity is chosen by setting no tenant and no secret; client_id then names a user-assigned one.
  tenant_id          = var.auth_method == "oidc" && var.tenant_id != "" ? var.tenant_id : null
  client_id          = var.auth_method != "cli" && var.client_id != "" ? var.client_id : null
  oidc_request_url   = local.oidc ? var.oidc_request_url : null
  oidc_request_token = local.oidc ? var.oidc_request_token : null

  # Base: a marketplace image (with its purchase plan) or a gallery image version (layered builds).
  os_type         = "Linux"
  image_publisher = var.marketplace == null ? null : var.marketplace.publisher
  image_offer     = var.marketplace == null ? null : var.marketplace.offer
  image_sku       = var.marketplace == null ? null : var.marketplace.sku
  image_version   = var.marketplace == null ? null : var.marketplace.version

  dynamic "plan_info" {
    for_each = var.plan_info == null ? [] : [var.plan_info]
    content {
      plan_name      = plan_info.value.name
      plan_product   = plan_info.value.product
      plan_publisher = plan_info.value.publisher
    }
  }

  dynamic "shared_image_gallery" {
    for_each = var.base_gallery_image == null ? [] : [var.base_gallery_image]
    content {
      subscription   = shared_image_gallery.value.subscription == "" ? var.subscription_id : shared_image_gallery.value.subscription
      resource_group = shared_image_gallery.value.resource_group
      gallery_name   = shared_image_gallery.value.gallery_name
      image_name     = shared_image_gallery.value.image_name
      image_version  = shared_image_gallery.value.image_version == "" ? null : shared_image_gallery.value.image_version
    }
  }

  # Build VM.
  location            = var.location
  vm_size             = var.vm_size
  os_disk_size_gb     = var.os_disk_size_gb
  security_type       = var.security_type
  secure_boot_enabled = local.trusted ? true : null
  vtpm_enabled        = local.trusted ? true : null
  azure_tags          = var.azure_tags

  dynamic "spot" {
    for_each = var.spot ? [1] : []
    content {
      eviction_policy = "Delete"
      max_price       = -1
    }
  }

  virtual_network_resource_group_name    = var.virtual_network == null ? null : var.virtual_network.resource_group
  virtual_network_name                   = var.virtual_network == null ? null : var.virtual_network.name
  virtual_network_subnet_name            = var.virtual_network == null ? null : var.virtual_network.subnet
  private_virtual_network_with_public_ip = var.virtual_network == null ? null : false

  communicator = "ssh"
  ssh_username = "packer"
  ssh_timeout  = "20m"

  # Output: a staging gallery version excluded from latest (publishing promotes it) or a managed image.
  managed_image_name                = local.gallery_out ? null : var.managed_image_name
  managed_image_resource_group_name = local.gallery_out ? null : var.gallery.resource_group

  dynamic "shared_image_gallery_destination" {
    for_each = local.gallery_out ? [var.gallery] : []
    iterator = dest
    content {
      subscription            = var.subscription_id
      resource_group          = dest.value.resource_group
      gallery_name            = dest.value.gallery_name
      image_name              = dest.value.image_name
      image_version           = var.image_version
      storage_account_type    = dest.value.storage_account_type
      use_shallow_replication = dest.value.shallow_replication

      dynamic "target_region" {
        for_each = dest.value.target_regions
        content {
          name     = target_region.value.name
          replicas = target_region.value.replicas
        }
      }
    }
  }
  shared_gallery_image_version_exclude_from_latest = local.gallery_out ? var.gallery.exclude_from_latest : null
  shared_gallery_image_version_end_of_life_date    = local.gallery_out && var.gallery.end_of_life_date != "" ? var.gallery.end_of_life_date : null
  shared_image_gallery_timeout                     = var.timeout
}

build {
  name    = "builder"
  sources = ["source.azure-arm.image"]

  # 0. A fresh marketplace VM: wait for cloud-init and the apt locks (wait-for-apt.sh).
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'"
    script          = var.wait_script
  }
  # 1. The same playbook as the local target, without the final (generalize) roles. Packer connects as the
  #    unprivileged `packer` user: Ansible escalates with sudo (--become).
  provisioner "ansible" {
    playbook_file    = var.ansible_playbook
    user             = "packer"
    use_proxy        = false
    ansible_env_vars = var.ansible_env_vars
    extra_arguments  = ["--become", "--extra-vars=@${var.ansible_vars_file}", "--skip-tags=${join(",", var.final_roles)}"]
  }

  # 2. Verification suites on the build VM; the result is kept until the JUnit report is downloaded.
  provisioner "shell" {
    inline = ["mkdir -p ${var.verify_remote_dir}"]
  }

  provisioner "file" {
    source      = "${var.verify_bundle}/"
    destination = var.verify_remote_dir
  }

  provisioner "shell" {
    inline = ["${var.verify_command} && rc=0 || rc=$?; echo $rc > ${local.verify_result}"]
  }

  provisioner "file" {
    direction   = "download"
    source      = "${var.verify_remote_dir}/junit.xml"
    destination = var.junit_file
  }

  # A failed verification fails the build here: nothing is captured or published.
  provisioner "shell" {
    inline = ["rc=$(cat ${local.verify_result}); if [ \"$rc\" != 0 ]; then sudo rm -rf ${var.verify_remote_dir}; exit $rc; fi"]
  }

  # 3. SBOM (CycloneDX JSON) of every installed dpkg package, downloaded next to the JUnit report.
  provisioner "shell" {
    inline = [var.sbom_command]
  }

  provisioner "file" {
    direction   = "download"
    source      = "${var.verify_remote_dir}/sbom.cdx.json"
    destination = var.sbom_file
  }

  provisioner "shell" {
    inline = ["sudo rm -rf ${var.verify_remote_dir}"]
  }

  # 4. Generalize (the final roles), then the Azure agent deprovisions the VM: once, as the last step (it
  #    deletes the `packer` user this build connects as).
  provisioner "ansible" {
    playbook_file    = var.ansible_playbook
    user             = "packer"
    use_proxy        = false
    ansible_env_vars = var.ansible_env_vars
    extra_arguments  = ["--become", "--extra-vars=@${var.ansible_vars_file}", "--tags=${join(",", var.final_roles)}"]
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; {{ .Vars }} sudo -E sh '{{ .Path }}'"
    inline          = ["/usr/sbin/waagent -force -deprovision+user && export HISTSIZE=0 && sync"]
    skip_clean      = true
  }

  post-processor "manifest" {
    output      = var.manifest_file
    strip_path  = true
    custom_data = var.azure_tags
  }
}
