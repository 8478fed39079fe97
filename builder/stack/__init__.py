"""The stack model: one resolved ``Stack`` per catalog image, and the tables it is made from.

- ``components``: per component, the role that installs it, its systemd unit and its static checks;
- ``layers``: which roles (and so components) each image layer holds, and the playbook tags;
- ``packages``: the apt packages that carry each component, at which version;
- ``feeds``: the vendors' apt repositories and downloads, and how a feed setting maps them;
- ``tags``: the names of the tags on gallery versions;
- ``model``: ``Stack`` and ``resolve(catalog, image)``.
"""

from builder.stack.model import Component, Stack, from_image, resolve

__all__ = ["Component", "Stack", "from_image", "resolve"]
