"""``builder report``: build records written by the project's own writers (``builder.local.records``,
``builder.local.manifest``, ``builder.local.sbom``, ``builder.verify.results``) gathered and rendered, an Azure
build folder with a real Packer log and real JUnit, and the page opened in a real headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from builder.cli import main
from builder.hashing import sha256_file
from builder.local import records
from builder.local.manifest import BuildFacts, write_manifest
from builder.local.sbom import write_sbom
from builder.report import gather, render, write
from builder.report.checks import junit_name, read_json, read_junit
from builder.verify.results import CheckResult, VerifyResult

IMAGE = "ndh100-train"
PASSING = [("packages.pinned[cuda-toolkit-13-0]", "13.0.1-1", "13.0.1-1"),
           ("gpu_stack.cuda_home", "/usr/local/cuda-13.0", "/usr/local/cuda-13.0")]
FAILING = ("services.enabled[nvidia-fabricmanager]", "enabled", "disabled")
PHASES = ["base", "render", "layer:base", "layer:gpu", "image-manifest", "verify", "generalize", "verify:hygiene",
          "sbom", "disk", "manifest"]


def _tree(root: Path, packages: dict[str, str]) -> Path:
    """A root filesystem holding only a dpkg database (what ``write_sbom`` reads with ``dpkg-query --admindir``)."""
    status = root / "var/lib/dpkg/status"
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text("".join(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\n"
                              f"Version: {version}\nMaintainer: Someone <someone@example.org>\n\n"
                              for name, version in packages.items()), encoding="utf-8")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n', encoding="utf-8")
    return root


def _verify_json(folder: Path, select: str, checks: list[CheckResult]) -> None:
    """As ``builder.verify.run_suite`` writes ``--json``: ``VerifyResult.as_dict``."""
    result = VerifyResult(IMAGE, "static", select, "chroot", "/rootfs", checks)
    (folder / f"verify-{select}.json").write_text(json.dumps(result.as_dict(), indent=2) + "\n", encoding="utf-8")


def make_build(state: Path, *, started: float, components: dict[str, str], packages: dict[str, str] | None,
               fail_check: tuple[str, str, str] | None = None, version: str = "2026.1201.0") -> records.BuildRecord:
    """A build record as the pipeline leaves it: phases with logs and seconds, verification JSON, and for a build
    that got that far the SBOM and manifest. ``fail_check``: the `verify` phase fails on that one check."""
    record = records.new_build(state, IMAGE, {"feed": "stand-in"})
    record.started, record.version = started, version
    folder = record.directory
    for index, name in enumerate(PHASES):
        phase = record.phase(name)
        log = folder / "logs" / f"{name.replace(':', '-')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"{name} log\n", encoding="utf-8")
        phase.log, phase.seconds, phase.status = str(log), 2.0 + index, "done"
    record.phase("layer:base").status = "cached"
    checks = [CheckResult(n, "static", n.split(".")[0], "passed", e, f) for n, e, f in PASSING]
    if fail_check:
        name, expected, found = fail_check
        checks.append(CheckResult(name, "static", name.split(".")[0], "failed", expected, found,
                                  f"expected {expected}, found {found}"))
    _verify_json(folder, "pre-generalize", checks)
    if fail_check:
        failed = PHASES.index("verify")
        record.phase("verify").status = "failed"
        record.phase("verify").detail = "2 passed, 1 failed, 0 skipped"
        for name in PHASES[failed + 1:]:
            record.phase(name).status, record.phase(name).seconds = "skipped", 0.0
        record.status = records.FAILED
        record.error = f"phase 'verify' failed: static verification (pre-generalize) failed: {fail_check[0]}"
        record.error_log = str(folder / "verify-pre-generalize.json")
    else:
        _verify_json(folder, "hygiene", [CheckResult("hygiene.no_ssh_host_keys", "static", "hygiene", "passed",
                                                     "none", "none")])
        sbom = folder / f"{IMAGE}-{version}.cdx.json"
        write_sbom(_tree(state / f"tree-{record.id}", packages or {}), sbom, IMAGE, version)
        record.artifacts["sbom"] = str(sbom)
        facts = BuildFacts(image=IMAGE, version=version, build_id=record.id, git_commit="abc123",
                           inputs_digest="d" * 64, base={"os": "debian12", "key": "k1", "source": "debootstrap"},
                           feed={"name": "stand-in"}, layers=[], components=components, packages={},
                           artifacts=dict(record.artifacts))
        record.artifacts["manifest"] = str(write_manifest(facts, sha256_file, folder / "manifest.json"))
        record.status = records.SUCCEEDED
    record.finished = started + sum(p.seconds for p in record.phases)
    record.save()
    return record


def test_failed_build_report_names_the_failing_check_with_expected_and_found(tmp_path):
    record = make_build(tmp_path, started=1_000_000.0, components={"cuda": "13.0.1"}, packages=None,
                        fail_check=FAILING)
    report = gather(tmp_path, record.id)
    assert report.status == "failed" and report.target == "local" and report.version == "2026.1201.0"
    ((run, check),) = report.failures()
    assert (check.name, check.expected, check.found) == FAILING and run.label == "static suite, pre-generalize"
    assert [p.name for p in report.phases] == PHASES
    verify = next(p for p in report.phases if p.name == "verify")
    assert verify.failed and verify.start == sum(2.0 + i for i in range(PHASES.index("verify")))
    assert verify.log is not None and verify.log.exists
    assert report.changes.previous is None and "first build" in report.changes.note
    assert report.components == {} and report.packages is None  # no manifest, no render folder, no SBOM
    page = render(report)
    failing = page.split('id="failed-checks"', 1)[1].split("</section>", 1)[0]
    for text in FAILING:
        assert text in failing
    assert "1 failing check" in failing and "First build" in page
    assert 'href="logs/verify.log"' in page and 'href="verify-pre-generalize.json"' in page


def test_changes_since_the_previous_successful_build_of_the_image(tmp_path):
    old = make_build(tmp_path, started=1_000_000.0, version="2026.1130.0",
                     components={"cuda": "12.8.1", "nccl": "2.27.3-1+cuda12.8", "dcgm": "4.2.3"},
                     packages={"libc6": "2.36-9", "cuda-toolkit-12-8": "12.8.1-1", "gone": "1.0"})
    between = make_build(tmp_path, started=1_000_100.0, components={}, packages=None, fail_check=FAILING)
    new = make_build(tmp_path, started=1_000_200.0, version="2026.1201.0",
                     components={"cuda": "13.0.1", "nccl": "2.27.3-1+cuda12.8", "rocm": "7.0"},
                     packages={"libc6": "2.36-9+deb12u1", "cuda-toolkit-13-0": "13.0.1-1"})
    report = gather(tmp_path, new.id)
    assert report.status == "succeeded" and report.changes.previous == old.id
    assert report.changes.previous_version == "2026.1130.0"
    assert {(c.name, c.kind, c.old, c.new) for c in report.changes.components} == {
        ("cuda", "changed", "12.8.1", "13.0.1"), ("dcgm", "removed", "4.2.3", None), ("rocm", "added", None, "7.0")}
    assert {(c.name, c.kind) for c in report.changes.packages} == {
        ("libc6", "changed"), ("cuda-toolkit-12-8", "removed"), ("gone", "removed"), ("cuda-toolkit-13-0", "added")}
    assert report.packages == {"libc6": "2.36-9+deb12u1", "cuda-toolkit-13-0": "13.0.1-1"}
    assert [run.label for run in report.runs] == ["static suite, pre-generalize", "static suite, hygiene"]
    assert ("git commit", "abc123") in report.facts
    page = render(report)
    assert "1 changed, 1 added, 2 removed." in page and old.id in page and "First build" not in page
    assert "failing check" not in page
    stopped = gather(tmp_path, between.id)  # a failed build is no version: compared with the one before it
    assert stopped.changes.previous == old.id and stopped.changes.components is None
    assert "no component versions recorded for this build" in stopped.changes.note
    assert "no SBOM for this build" in render(stopped)


def test_a_build_stopped_before_its_manifest_shows_the_rendered_pins(tmp_path):
    """The variables file as ``builder.render.write_render`` writes it (``dump_vars``: a string that holds a
    Jinja opener is tagged ``!unsafe``)."""
    from builder.render import VARS_FILE, dump_vars

    record = make_build(tmp_path, started=1_000_000.0, components={}, packages=None, fail_check=FAILING)
    (record.directory / "render").mkdir()
    manifest = {"image": IMAGE, "description": "{{ data, not a template }}",
                "components": {"nvidia_driver": "580.95.05", "cuda": "13.0.1"}}
    text = dump_vars({"builder_image": IMAGE, "builder_image_manifest": manifest})
    assert "!unsafe" in text
    (record.directory / "render" / VARS_FILE).write_text(text, encoding="utf-8")
    report = gather(tmp_path, record.id)
    assert report.components == manifest["components"]
    assert "the build has written no manifest.json" in report.components_source


def test_running_build_whose_process_died_reads_as_abandoned(tmp_path):
    record = records.new_build(tmp_path, IMAGE)
    record.phase("base").status = "running"
    record.save()
    assert gather(tmp_path, record.id).status == "abandoned"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_untrusted_text_is_escaped_and_the_page_loads_nothing(tmp_path):
    hostile = '<script>alert(1)</script><img src="https://example.org/x.png">'
    record = make_build(tmp_path, started=1_000_000.0, components={}, packages=None,
                        fail_check=("packages.pinned[evil]", hostile, '"><b onmouseover=x>'))
    record.phase("base").detail = hostile
    record.save()
    page = render(gather(tmp_path, record.id))
    parser = _Tags()
    parser.feed(page)
    assert not [t for t, _ in parser.tags if t in ("script", "img", "iframe", "object", "embed", "link")]
    assert not [a for _, attrs in parser.tags for a in attrs if a.startswith("on")]
    hrefs = [attrs["href"] for t, attrs in parser.tags if t == "a"]
    assert hrefs and all(h.startswith("#") or not re.match(r"[a-z][a-z0-9+.-]*:", h, re.I) for h in hrefs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    csp = [attrs["content"] for t, attrs in parser.tags if t == "meta" and attrs.get("http-equiv")]
    assert csp == ["default-src 'none'; style-src 'unsafe-inline'"]


def test_cli_writes_the_page_prints_its_path_and_json(tmp_path, capsys):
    record = make_build(tmp_path, started=1_000_000.0, components={}, packages=None, fail_check=FAILING)
    assert main(["--state-dir", str(tmp_path), "report", record.id]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(record.directory / "report.html") and Path(out).is_file()
    elsewhere = tmp_path / "out" / "page.html"
    assert main(["--state-dir", str(tmp_path), "report", record.id, "--output", str(elsewhere)]) == 0
    capsys.readouterr()
    assert f'href="../{record.id}/logs/verify.log"'.replace(f"../{record.id}", f"../builds/{record.id}") \
        in elsewhere.read_text()  # links stay valid from another folder
    assert main(["--state-dir", str(tmp_path), "report", record.id, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in data["failed_checks"]] == [FAILING[0]] and data["status"] == "failed"


def test_builds_lists_the_report_once_written(tmp_path, capsys):
    record = make_build(tmp_path, started=1_000_000.0, components={}, packages=None, fail_check=FAILING)
    assert main(["--state-dir", str(tmp_path), "builds"]) == 0
    before = capsys.readouterr()
    assert "report.html" not in before.out and "builder report ID" in before.err
    assert main(["--state-dir", str(tmp_path), "report", record.id]) == 0
    capsys.readouterr()
    assert main(["--state-dir", str(tmp_path), "builds"]) == 0
    assert "report.html" in capsys.readouterr().out.replace("\n", "")


@pytest.mark.parametrize("build_id", ["no-such-build", "../builds", "x/../../etc"])
def test_unknown_build_id_is_exit_2_naming_builder_builds(tmp_path, capsys, build_id):
    assert main(["--state-dir", str(tmp_path), "report", build_id]) == 2
    err = capsys.readouterr().err
    assert f"no build {build_id!r}" in err and "`builder builds`" in err and err.count("\n") == 1


def test_junit_names_match_the_suites_check_names():
    assert junit_name("static.test_packages", "test_pinned[nvidia-open-local]") == (
        "static", "packages", "packages.pinned[nvidia-open]")
    assert junit_name("static.test_manifest", "test_present[local]") == ("static", "manifest", "manifest.present")
    assert junit_name("hardware.test_gpu", "test_count[ssh://10.0.0.4]")[2] == "gpu.count"


@pytest.fixture(scope="module")
def real_verify(tmp_path_factory):
    """The real static suite (``builder.verify.run_suite``, ``--connection local``) on this machine, two groups:
    its JUnit and JSON files of one run. What passes depends on the host; both files describe the same run."""
    from builder.catalog.loader import load_catalog
    from builder.verify import run_suite
    from tests.conftest import REPO

    out = tmp_path_factory.mktemp("verify")
    run_suite(load_catalog(REPO / "images"), IMAGE, connection="local", host=None, suite="static",
              select="manifest,services", junit=out / "junit.xml", json_out=out / "verify.json")
    return out


def test_junit_reader_agrees_with_the_json_of_the_same_real_run(real_verify):
    from_junit = read_junit(real_verify / "junit.xml").checks
    from_json = read_json(real_verify / "verify.json").checks
    assert len(from_junit) == len(from_json) > 5
    assert any("[" in c.name for c in from_json)  # parametrized checks, the host id stripped in both
    assert [(c.name, c.outcome, c.expected, c.found) for c in from_junit] == \
        [(c.name, c.outcome, c.expected, c.found) for c in from_json]


def test_azure_build_folders_success_and_failure(tmp_path, packer_path, null_template, real_verify):
    """Azure folders as ``builder.packer.azure.azure_build`` leaves them: a real Packer machine-readable log
    (null builder), the build VM's JUnit (a real run), the SBOM; ``build.json`` only when an image was captured."""
    from builder.packer import driver
    from builder.packer.azure import BUILD_LOG, BuildArtifact

    azure = tmp_path / "azure"
    ok, bad = azure / f"{IMAGE}-2026.1201.0-20261201T100000", azure / f"{IMAGE}-2026.1201.1-20261201T110000"
    first = azure / f"{IMAGE}-2026.1130.0-20261130T100000"
    runs = []
    for folder, template in ((ok, "success"), (bad, "failure")):
        folder.mkdir(parents=True)
        command = driver.build_command(packer_path, null_template(template), variables={"message": "hi"}
                                       if template == "success" else None)
        runs.append(driver.stream(command, log=folder / BUILD_LOG, cwd=folder))
    assert runs[0].ok and not runs[1].ok
    shutil.copy(real_verify / "junit.xml", ok / "junit.xml")
    write_sbom(_tree(tmp_path / "tree-ok", {"libc6": "2.36-9+deb12u1"}), ok / "sbom.cdx.json", IMAGE, "2026.1201.0")
    first.mkdir()
    write_sbom(_tree(tmp_path / "tree-first", {"libc6": "2.36-9"}), first / "sbom.cdx.json", IMAGE, "2026.1130.0")
    for folder, version in ((ok, "2026.1201.0"), (first, "2026.1130.0")):
        artifact = BuildArtifact(IMAGE, version, f"/subscriptions/0/galleries/g/images/{IMAGE}/versions/{version}",
                                 "d" * 64, folder, log=folder / BUILD_LOG, junit=folder / "junit.xml",
                                 packer_version="1.16.0", seconds=42.0, sbom=folder / "sbom.cdx.json")
        (folder / "build.json").write_text(json.dumps(artifact.as_dict(), indent=2) + "\n", encoding="utf-8")

    good = gather(tmp_path, ok.name)
    assert good.status == "succeeded" and good.target == "azure" and good.version == "2026.1201.0"
    assert good.duration == 42.0 and good.phases and all(p.status == "done" for p in good.phases)
    assert len(good.runs) == 1 and len(good.runs[0].checks) == len(read_json(real_verify / "verify.json").checks)
    assert good.changes.previous == first.name
    assert [(c.name, c.old, c.new) for c in good.changes.packages] == [("libc6", "2.36-9", "2.36-9+deb12u1")]
    assert ("packer", "1.16.0") in good.facts

    failed = gather(tmp_path, bad.name)
    assert failed.status == "failed" and "non-zero exit status: 3" in (failed.error or "")
    assert failed.error.startswith("Script exited with non-zero exit status: 3")  # the build error record
    # The step before Packer's "Provisioning step had errors" failed. shell-local prints its output as `say` lines,
    # so here that is its last output line; remote shell and Ansible output is `message` (not a step).
    assert [(p.name.split(":")[0], p.status) for p in failed.phases] == [
        ("Running local shell script", "done"), ("before the failure", "failed"),
        ("Provisioning step had errors", "done")]
    assert failed.error_log is not None
    assert "no junit.xml" in " ".join(failed.notes)
    page = render(failed)
    assert "non-zero exit status: 3" in page and 'href="packer-build.log"' in page

    rendered_only = azure / f"{IMAGE}-2026.1201.2-20261201T120000"  # a dry run: rendered files, no Packer log
    rendered_only.mkdir()
    nothing = gather(tmp_path, rendered_only.name)
    assert nothing.status == "not built" and "dry run" in nothing.error and not nothing.phases


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium(url: str, profile: Path, screenshot: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={profile}", "--window-size=1280,2000", f"--screenshot={screenshot}", "--dump-dom", url],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/setup installs Debian's chromium)")
def test_failed_build_report_in_headless_chromium(tmp_path):
    """The page in Debian's Chromium: a screenshot, no console message (no script, no blocked load, no error),
    and the failing check in the rendered DOM. A planted page with an external image proves the console check
    sees what the policy blocks."""
    state = tmp_path / "state"
    make_build(state, started=1_000_000.0, components={"cuda": "12.8.1"}, packages={"libc6": "2.36-9"})
    record = make_build(state, started=1_000_100.0, components={"cuda": "13.0.1"}, packages=None, fail_check=FAILING)
    page = write(gather(state, record.id), record.directory / "report.html")
    planted = tmp_path / "planted.html"
    planted.write_text(page.read_text().replace("<main>", '<main><img src="https://example.invalid/x.png">'))
    shots = tmp_path / "report.png", tmp_path / "planted.png"
    procs = [_chromium(path.as_uri(), tmp_path / f"profile-{i}", shot)
             for i, (path, shot) in enumerate(zip((page, planted), shots, strict=True))]
    (dom, log), (_, planted_log) = (p.communicate(timeout=90) for p in procs)
    assert all(p.returncode == 0 for p in procs), log[-2000:]
    assert shots[0].read_bytes().startswith(b"\x89PNG") and shots[0].stat().st_size > 10_000
    assert [line for line in log.splitlines() if ":CONSOLE" in line] == []
    assert any(":CONSOLE" in line and "example.invalid" in line for line in planted_log.splitlines())
    failing = dom.split('id="failed-checks"', 1)[1].split("</section>", 1)[0]
    assert all(text in failing for text in FAILING)
    assert "phase 'verify' failed" in dom and 'id="timeline"' in dom


def test_a_moved_state_folder_still_links_its_own_files(tmp_path):
    """Records name absolute paths; a state folder copied elsewhere (a downloaded CI artifact) reads its own."""
    state = tmp_path / "state"
    make_build(state, started=1_000_000.0, components={"cuda": "12.8.1"}, packages={"libc6": "2.36-9"})
    new = make_build(state, started=1_000_100.0, components={"cuda": "13.0.1"}, packages={"libc6": "2.36-10"})
    moved = tmp_path / "moved"
    shutil.copytree(state, moved)
    shutil.rmtree(state)
    report = gather(moved, new.id)
    assert report.directory == moved / "builds" / new.id
    assert all(p.log is not None and p.log.exists and moved in p.log.path.parents for p in report.phases)
    assert all(a.exists for a in report.artifacts)
    assert [(c.name, c.old, c.new) for c in report.changes.packages] == [("libc6", "2.36-9", "2.36-10")]


def test_file_names_are_the_ones_their_writers_use():
    from builder.packer.azure import BUILD_LOG
    from builder.packer.render import SBOM_FILE
    from builder.render import VARS_FILE
    from builder.report import contents

    assert (contents.VARS_FILE, contents.PACKER_LOG, contents.SBOM_FILE) == (VARS_FILE, BUILD_LOG, SBOM_FILE)


def test_sbom_reader_reads_what_builder_diff_reads(tmp_path):
    from builder.diff import sbom_packages
    from builder.report.contents import sbom_packages as report_packages

    sbom = tmp_path / "x.cdx.json"
    write_sbom(_tree(tmp_path / "tree", {"libc6": "2.36-9", "zlib1g": "1:1.2.13"}), sbom, IMAGE, "1.0.0",
               {"hpcx": {"sha256": "0" * 64, "version": "2.24", "filename": "hpcx.tbz"}})
    assert report_packages(sbom) == sbom_packages(sbom) == {"libc6": "2.36-9", "zlib1g": "1:1.2.13", "hpcx": "2.24"}


def test_packer_steps_are_say_lines_and_output_is_not(tmp_path):
    """azure-arm's steps and provisioner starts are `say`; remote command output is `message` (the sample run of
    tests/packer/test_events.py)."""
    from builder.report.data import packer_steps
    from tests.packer.test_events import AZURE_RUN

    log = tmp_path / "packer-build.log"
    log.write_text(AZURE_RUN, encoding="utf-8")
    steps, error, span = packer_steps(log)
    assert [(s.name, s.start, s.seconds) for s in steps] == [
        ("Running builder ...", 0.0, 2.0), ("Provisioning with Ansible...", 2.0, 7.0)]
    assert error is None and span == 9.0
