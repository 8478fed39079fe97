"""Secure Boot: a TrustedLaunch image loads only kernel modules signed by a key its VMs trust.

Azure's Trusted Launch turns Secure Boot on; the kernel then refuses a module whose signature it cannot verify.
A DKMS-built module is signed, if at all, by a key made on the build VM (builder.verify.probe.MOK_CERTIFICATES)
that no VM deployed from the image has enrolled.
"""

from __future__ import annotations

import pytest

from builder.verify import probe

SECURE_BOOT_TYPES = ("TrustedLaunch", "TrustedLaunchSupported")  # a TrustedLaunchSupported image may boot with it


def test_boot_modules_signed(expect, host, check):
    if expect["security_type"] not in SECURE_BOOT_TYPES:
        pytest.skip(f"security type {expect['security_type']}: Secure Boot is off")
    releases = probe.kernels(host)
    if not releases:
        pytest.fail("expected a kernel in /boot with its /lib/modules tree, found none")
    local = probe.build_local_signers(host)
    problems, checked = [], 0
    for release in releases:
        files, missing = probe.boot_module_files(host, release)
        problems += [f"{name}: no module for {release}" for name in missing]
        for path, signer in probe.module_signers(host, sorted(files)).items():
            checked += 1
            if not signer:
                problems.append(f"{path} ({files[path]}): unsigned")
            elif signer in local:
                problems.append(f"{path} ({files[path]}): signed by '{signer}', a key made on the build VM")
    check.that(not problems, "every module loaded at boot signed by a key the kernel or platform trusts",
               problems or f"{checked} modules signed")
