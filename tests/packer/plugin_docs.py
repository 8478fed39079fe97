"""Attribute and block names the Packer plugins document, to check the Azure template against.

Sources: hashicorp/packer-plugin-azure docs-partials/builder/azure/arm/{Config-required,Config-not-required,
SharedImageGallery-not-required,SharedImageGalleryDestination-not-required,TargetRegion-*,Spot-not-required}.mdx
and docs-partials/builder/azure/common/client/Config-not-required.mdx (OIDC fields oidc_request_url and
oidc_request_token read there @1c97a49c52ae); hashicorp/packer-plugin-ansible
docs-partials/provisioner/ansible/Config-{required,not-required}.mdx; Packer core docs for the shell and file
provisioners, the manifest post-processor, the SSH communicator and the packer/build blocks.
"""

AZURE_CLIENT = {
    "cloud_environment_name", "metadata_host", "client_id", "client_secret", "client_cert_path",
    "client_cert_token_timeout", "client_jwt", "object_id", "tenant_id", "subscription_id", "use_azure_cli_auth",
    "use_interactive_auth", "oidc_request_url", "oidc_request_token",
}
AZURE_ARM = AZURE_CLIENT | {
    "image_publisher", "image_offer", "image_sku", "image_url", "custom_managed_image_name",
    "custom_managed_image_resource_group_name", "user_assigned_managed_identities", "capture_name_prefix",
    "capture_container_name", "shared_image_gallery_timeout", "shared_gallery_image_version_end_of_life_date",
    "shared_image_gallery_replica_count", "shared_gallery_image_version_exclude_from_latest", "image_version",
    "location", "vm_size", "managed_image_resource_group_name", "managed_image_name",
    "managed_image_storage_account_type", "managed_image_os_disk_snapshot_name",
    "managed_image_data_disk_snapshot_prefix", "keep_os_disk", "managed_image_zone_resilient", "azure_tags",
    "resource_group_name", "storage_account", "temp_compute_name", "temp_nic_name", "temp_resource_group_name",
    "build_resource_group_name", "build_key_vault_name", "build_key_vault_secret_name", "build_key_vault_sku",
    "skip_create_build_key_vault", "disk_encryption_set_id", "private_virtual_network_with_public_ip",
    "virtual_network_name", "virtual_network_subnet_name", "virtual_network_resource_group_name",
    "custom_data_file", "custom_data", "user_data_file", "user_data", "custom_script", "polling_duration_timeout",
    "os_type", "winrm_expiration_time", "temp_os_disk_name", "os_disk_size_gb", "disk_additional_size",
    "disk_caching_type", "allowed_inbound_ip_addresses", "boot_diag_storage_account",
    "custom_resource_build_prefix", "license_type", "secure_boot_enabled", "encryption_at_host", "public_ip_sku",
    "vtpm_enabled", "security_type", "security_encryption_type", "async_resourcegroup_delete",
    # SSH communicator (packer-plugin-sdk)
    "communicator", "ssh_username", "ssh_timeout", "ssh_port", "ssh_pty", "ssh_handshake_attempts",
}
AZURE_ARM_BLOCKS = {
    "plan_info": {"plan_name", "plan_product", "plan_publisher", "plan_promotion_code"},
    "shared_image_gallery": {"id", "subscription", "resource_group", "gallery_name", "image_name", "image_version",
                             "community_gallery_image_id", "direct_shared_gallery_image_id"},
    "shared_image_gallery_destination": {"subscription", "resource_group", "gallery_name", "image_name",
                                         "image_version", "replication_regions", "storage_account_type",
                                         "specialized", "use_shallow_replication"},
    "spot": {"eviction_policy", "max_price"},
    "azure_tag": {"name", "value"},
}
# Nested blocks inside blocks (the docs' HCL2 example writes target_region blocks).
AZURE_ARM_NESTED = {"shared_image_gallery_destination": {"target_region": {"name", "replicas",
                                                                           "disk_encryption_set_id"}}}

COMMON_PROVISIONER = {"only", "except", "pause_before", "max_retries", "timeout", "override"}
PROVISIONERS = {
    "ansible": COMMON_PROVISIONER | {
        "playbook_file", "command", "extra_arguments", "ansible_env_vars", "ansible_ssh_extra_args", "groups",
        "empty_groups", "host_alias", "user", "local_port", "ssh_host_key_file", "ssh_authorized_key_file",
        "ansible_proxy_key_type", "sftp_command", "skip_version_check", "use_sftp", "inventory_directory",
        "inventory_file_template", "inventory_file", "keep_inventory_file", "galaxy_file", "galaxy_command",
        "galaxy_force_install", "galaxy_force_with_deps", "roles_path", "collections_path", "use_proxy",
        "ansible_winrm_use_http",
    },
    "shell": COMMON_PROVISIONER | {
        "inline", "script", "scripts", "execute_command", "environment_vars", "env", "skip_clean",
        "expect_disconnect", "inline_shebang", "remote_folder", "remote_file", "remote_path", "valid_exit_codes",
        "binary", "start_retry_timeout", "env_var_format", "use_env_var_file",
    },
    "file": COMMON_PROVISIONER | {"source", "sources", "content", "destination", "direction", "generated"},
}
POST_PROCESSORS = {"manifest": {"output", "strip_path", "strip_time", "custom_data", "keep_input_artifact"}}
PACKER_BLOCK = {"required_version", "required_plugins"}
BUILD_BLOCK = {"name", "description", "sources", "source", "provisioner", "post-processor", "post-processors",
               "error-cleanup-provisioner"}
