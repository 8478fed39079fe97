"""The "Examples:" section at the end of every command's ``--help`` (click's epilog), kept in one place.

Keys are command paths as typed after ``builder`` ("" is ``builder`` itself, "cache ls" a subcommand);
tests/unit/test_cli_help.py checks that every command has an entry and that every example parses.
IMAGE names are the shipped catalog's; BUILD ids come from ``builder builds -o tsv`` (its first column).
"""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "": [
        "builder list",
        "builder validate",
        "builder build cpu-infer --feed stand-in --no-boot-test",
        "builder --catalog my-images/ list -o yaml",
    ],
    "list": [
        "builder list",
        "builder list --all -o yaml",
        "builder list -o tsv | cut -f1",
    ],
    "show": [
        "builder show ndh100-train",
        "builder show ndh100-train --explain",
        "builder show cpu-infer -o json",
    ],
    "validate": [
        "builder validate",
        "builder validate ndh100-train cpu-infer",
        "builder validate -o json",
    ],
    "plan": [
        "builder plan ndh100-train",
        "builder plan ndh100-train --target azure -o yaml",
    ],
    "matrix": [
        "builder matrix",
        "builder matrix --changed-since origin/main",
        "builder matrix --images cpu-infer,ndh100-train",
    ],
    "doctor": [
        "builder doctor",
        "builder doctor ndh100-train --target azure",
        "builder doctor -o tsv",
    ],
    "render": [
        "builder render ndh100-train --target azure --out out/",
        "builder render ndh100-train --out build/ --feed stand-in --os debian12",
        "builder render cpu-infer --out build/ -o yaml",
    ],
    "converge": [
        "builder converge --rootfs rootfs/ --vars build/ansible-vars.yml --check",
        "builder converge --rootfs rootfs/ --vars build/ansible-vars.yml --tags base,gpu -o json",
    ],
    "report": [
        'builder report "$(builder builds -o tsv | head -n1 | cut -f1)"',
        'builder report "$(builder builds -o tsv | head -n1 | cut -f1)" --output /tmp/page.html',
        'builder report "$(builder builds -o tsv | head -n1 | cut -f1)" --format yaml',
    ],
    "reference": [
        "builder reference ndh100-train",
        "builder reference ndh100-train --format bicep",
        "builder reference cpu-infer --format terraform --spot -o yaml",
    ],
    "docs": [
        "builder docs",
        "builder docs --check",
    ],
    "diff": [
        "builder diff ndh100-train previous 2026.1130.0",
        "builder diff ndh100-train 2026.1129.0 2026.1130.0 --sbom sboms/ -o json",
    ],
    "patch": [
        "builder patch --dry-run",
        "builder patch cpu-infer --target local --feed stand-in --no-boot-test -o json",
    ],
    "outdated": [
        "builder outdated",
        "builder outdated ndh100-train --no-bases -o yaml",
    ],
    "build": [
        "builder build cpu-infer --feed stand-in --no-boot-test",
        "builder build ndh100-train --target azure --dry-run",
        "builder build cpu-infer --feed stand-in -o json > build-record.json",
    ],
    "boot-test": [
        "builder boot-test disk.vhd",
        "builder boot-test disk.qcow2 --timeout 600 -o json",
    ],
    "cache": [
        "builder cache ls",
        "builder cache prune --dry-run",
    ],
    "cache ls": [
        "builder cache ls",
        "builder cache ls -o tsv | cut -f1,2,6",
    ],
    "cache prune": [
        "builder cache prune --dry-run",
        "builder cache prune --older-than 14",
        "builder cache prune --image cpu-infer --all -o json",
    ],
    "builds": [
        "builder builds",
        "builder builds ndh100-train --limit 5",
        "builder builds -o tsv | cut -f1",
    ],
    "publish": [
        "builder publish ndh100-train --source-image-id /subscriptions/SUB/resourceGroups/RG/providers/"
        "Microsoft.Compute/images/ndh100-train-b42 --build-id b42 --verification passed",
        "builder publish cpu-infer --source-vm-id /subscriptions/SUB/resourceGroups/RG/providers/"
        "Microsoft.Compute/virtualMachines/build-vm --region eastus=2 -o json",
    ],
    "promote": [
        "builder promote ndh100-train 2026.1129.0",
        "builder promote ndh100-train 2026.1129.0 -o yaml",
    ],
    "yank": [
        'builder yank ndh100-train 2026.1129.0 --reason "driver regression" --yes',
    ],
    "versions": [
        "builder versions ndh100-train",
        "builder versions ndh100-train --tags -o yaml",
        "builder versions ndh100-train -o tsv | cut -f1,2",
    ],
    "gc": [
        "builder gc ndh100-train --keep 5 --dry-run",
        "builder gc ndh100-train --keep 5 --yes -o json",
    ],
    "emulator": [
        "builder emulator --state /tmp/arm --port 0",
        "builder emulator --state .builder/gallery --port 8443 --replication-delay 0",
    ],
    "verify": [
        "builder verify ndh100-train --connection chroot --host /var/tmp/rootfs",
        "builder verify ndh100-train --connection ssh --host azureuser@10.0.0.4 --suite all --sudo --junit verify.xml",
        "builder verify cpu-infer --connection local --select hygiene -o yaml",
    ],
}


def epilog(lines: list[str]) -> str:
    """Click epilog text: ``\\b`` keeps the lines as they are (click rewraps other paragraphs)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
