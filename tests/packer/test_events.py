"""Parsing Packer's machine-readable stream (lines as azure-arm and the ansible provisioner print them)."""

from __future__ import annotations

from builder.packer.driver import RunResult
from builder.packer.events import ArtifactCollector, parse_line

GALLERY_ID = ("/subscriptions/0000/resourceGroups/rg-ai-images/providers/Microsoft.Compute/galleries/ai_images/"
              "images/ndh100-train/versions/2026.1129.0")
AZURE_RUN = f"""\
1764460000,,ui,say,==> azure-arm.image: Running builder ...
1764460001,,ui,message,    azure-arm.image: Creating resource group%!(PACKER_COMMA) name 'pkr-Resource-Group-x'
1764460002,,ui,say,==> azure-arm.image: Provisioning with Ansible...
1764460003,,ui,message,    azure-arm.image: TASK [cuda : install] ***\\n    azure-arm.image: ok: [default]
1764460009,,ui,say,Build 'azure-arm.image' finished after 41 minutes 2 seconds.
1764460009,azure-arm.image,artifact-count,1
1764460009,azure-arm.image,artifact,0,builder-id,Azure.ResourceManagement.VMImage
1764460009,azure-arm.image,artifact,0,id,{GALLERY_ID}
1764460009,azure-arm.image,artifact,0,string,Azure.ResourceManagement.VMImage:\\n\\nOSType: Linux
1764460009,azure-arm.image,artifact,0,files-count,0
1764460009,azure-arm.image,artifact,0,end
"""


def test_ui_lines_are_unescaped():
    event = parse_line("1764460001,,ui,message,    azure-arm.image: a%!(PACKER_COMMA) b\\nc\n")
    assert event.kind == "message" and event.text == "    azure-arm.image: a, b\nc"
    assert event.timestamp == 1764460001 and event.target == ""
    error = parse_line("1764460001,,ui,error,Build 'azure-arm.image' errored: boom")
    assert error.kind == "error" and error.text == "Build 'azure-arm.image' errored: boom"


def test_non_machine_readable_lines_are_not_events():
    assert parse_line("Error: Failed to prepare build") is None
    assert parse_line("") is None


def test_build_errors_and_counts():
    assert parse_line("1,azure-arm.image,error,Step failed%!(PACKER_COMMA) cleaning up").text == \
        "Step failed, cleaning up"
    assert parse_line("1,,error-count,1").kind == "error-count"


def test_azure_artifact_id_is_extracted():
    collector = ArtifactCollector()
    events = [parse_line(line) for line in AZURE_RUN.splitlines()]
    for event in events:
        collector.add(event)
    (artifact,) = collector.artifacts
    assert artifact.id == GALLERY_ID and artifact.builder_id == "Azure.ResourceManagement.VMImage"
    assert artifact.string.startswith("Azure.ResourceManagement.VMImage:\n\nOSType: Linux")
    assert RunResult([], 0, collector.artifacts).artifact_id() == GALLERY_ID
    assert [e.kind for e in events[:4]] == ["say", "message", "say", "message"]


def test_artifact_id_prefers_the_builder_over_post_processors():
    collector = ArtifactCollector()
    for line in ("1,b,artifact,0,builder-id,packer.post-processor.manifest", "1,b,artifact,0,id,manifest.json",
                 "1,b,artifact,1,builder-id,Azure.ResourceManagement.VMImage", f"1,b,artifact,1,id,{GALLERY_ID}"):
        collector.add(parse_line(line))
    assert RunResult([], 0, collector.artifacts).artifact_id() == GALLERY_ID
    assert RunResult([], 0, []).artifact_id() is None
