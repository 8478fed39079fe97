"""Every location builder reads or writes by default, and the checkout's git commit.

Product code takes its paths from here (never from ``__file__`` arithmetic of its own, never from ``tests/``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parent
ANSIBLE_DIR = REPO / "ansible"
PLAYBOOK = ANSIBLE_DIR / "image.yml"
ANSIBLE_CONFIG = ANSIBLE_DIR / "ansible.cfg"
ROLES_DIR = ANSIBLE_DIR / "roles"
IMAGES_DIR = REPO / "images"
PACKER_DIR = IMAGES_DIR / "packer"
DATA_DIR = PACKAGE / "data"
STANDIN_MANIFEST = DATA_DIR / "standin-manifest.yaml"
BASE_PROFILES = DATA_DIR / "bases"  # what each marketplace base carries (docs/base-profiles.md)
FEED_RECORDS = DATA_DIR / "feeds"  # recorded package facts of the vendors' repositories (docs/recorded-feeds.md)
VERIFY_SUITES = PACKAGE / "verify" / "suites"
HARDWARE_SAMPLES = VERIFY_SUITES / "hardware" / "samples"  # the sample program the GPU check runs
DEFAULT_CATALOG = Path("images")  # relative: the catalog of the current directory, else IMAGES_DIR
DEFAULT_STATE = Path(".builder")  # build records, registry, local gallery (BUILDER_STATE)
DEFAULT_CACHE = Path("/var/tmp/builder-cache")  # base trees, layer snapshots, stand-in feeds (BUILDER_CACHE)
# Repository paths (relative, POSIX; folders end with "/") whose change affects every image: in every image's
# inputs digest (builder.packer.chain) and so in the rebuild matrix (builder.matrix). The Ansible content, the
# Packer template, the recorded data (feeds, base profiles, the stand-in feed's manifest), the stack model,
# verification, and the code that turns the catalog into Ansible and Packer variables and the stand-in feed.
SHARED_INPUTS = ("ansible/", "images/packer/", "builder/data/", "builder/stack/", "builder/verify/",
                 "builder/render.py", "builder/packer/render.py", "builder/standin.py")


def git_commit(repo: Path | None = None) -> str:
    """The checkout's commit (``unknown`` outside a git checkout)."""
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=repo or REPO)
    return result.stdout.strip() if result.returncode == 0 else "unknown"
