"""Azure build target: the Packer template's var file, the Packer driver and ``azure_build``."""
