"""Publishing to Azure Compute Gallery with the Azure SDK (and the local ARM emulator).

Python API: ``settings_from_env()``, ``publish_version(catalog, image, source=..., version=..., tags=...,
settings=..., progress=...)`` -> ``PublishResult``, ``Lifecycle(catalog, image, settings)`` for versions,
promote, yank and gc; ``builder.stack.tags.provenance(...)`` builds the provenance tags.
"""

from builder.azure.lifecycle import Lifecycle, VersionInfo
from builder.azure.progress import Progress
from builder.azure.publish import PublishResult, publish_version
from builder.azure.settings import Settings, StaticTokenCredential, emulator_settings, settings_from_env
from builder.azure.source import Source
from builder.stack.tags import provenance

__all__ = ["Lifecycle", "Progress", "PublishResult", "Settings", "Source", "StaticTokenCredential", "VersionInfo",
           "emulator_settings", "provenance", "publish_version", "settings_from_env"]
