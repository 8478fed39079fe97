"""The roles' interfaces, run with ansible-playbook against localhost (nothing is installed): the playbook's
mapping of the rendered variables satisfies every role's argument spec for every image, a bad or missing value
fails before any task with the option named, package_feed's entry points accept every rendered feed and
tarball, a role runs outside the playbook with only its documented variables, and the shared handler runs for
the role that notified it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from builder.catalog.loader import load_catalog
from builder.render import ansible_vars

REPO = Path(__file__).resolve().parent.parent.parent
ANSIBLE = REPO / "ansible"
ROLES = ANSIBLE / "roles"
pytestmark = pytest.mark.slow  # drives ansible-playbook (~30 s)
VALIDATE_ONLY = "validate-only"  # a tag no task has: only the argument checks (tagged always) run


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(REPO / "images")


@pytest.fixture(scope="module")
def rendered(catalog) -> dict[str, dict]:
    """Host name -> rendered variables: every buildable image on its catalog OS and on Debian 12 (upstream
    feed), plus a mirror feed and an Azure target."""
    hosts = {}
    for image in catalog.buildable():
        for os_name in sorted({image.model.os.value, "debian12"}):
            hosts[f"{image.name}-{os_name}"] = ansible_vars(catalog, image.name, "local", "upstream", os_name)
    hosts["ndh100-train-mirror"] = ansible_vars(catalog, "ndh100-train", "local", "file:///srv/mirror")
    hosts["ndmi300x-train-azure"] = ansible_vars(catalog, "ndmi300x-train", "azure", "https://mirror.invalid/m")
    return hosts


def run_play(tmp_path: Path, playbook: Path | list, hosts: dict[str, dict], *args: str,
             roles_path: tuple[Path, ...] = ()) -> tuple[int, dict]:
    """Run a playbook (a path, or plays to write) on local-connection hosts; (exit code, json callback output)."""
    if not isinstance(playbook, Path):
        path = tmp_path / "play.yml"
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
        playbook = path
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"all": {"hosts": {
        name: {**json.loads(json.dumps(v, default=str)), "ansible_connection": "local",
               "ansible_python_interpreter": sys.executable} for name, v in hosts.items()}}}))
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_FORKS": "8",
           "ANSIBLE_HOME": str(tmp_path / ".ansible"),
           "ANSIBLE_LOCAL_TEMP": str(tmp_path / ".ansible/tmp"), "ANSIBLE_NOCOLOR": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    if roles_path:
        env["ANSIBLE_ROLES_PATH"] = ":".join(str(p) for p in (*roles_path, ROLES))
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory),
                             str(playbook), *args], capture_output=True, text=True, timeout=600, env=env, check=False)
    try:  # the JSON document, then the profile_tasks recap (ansible.cfg)
        return result.returncode, json.JSONDecoder().raw_decode(result.stdout[result.stdout.index("{"):])[0]
    except ValueError:
        pytest.fail(f"no JSON from ansible-playbook (exit {result.returncode}):\n{result.stdout[-3000:]}\n"
                    f"{result.stderr[-3000:]}")


def host_results(output: dict, host: str) -> list[tuple[str, dict]]:
    """``[(task name, result)]`` of one host, in order."""
    return [(task["task"]["name"], task["hosts"][host]) for play in output["plays"] for task in play["tasks"]
            if host in task["hosts"]]


def failure(output: dict, host: str) -> str:
    failed = [f"{name}: {result.get('msg', '')}" for name, result in host_results(output, host)
              if result.get("failed")]
    assert failed, f"{host} did not fail"
    return failed[0]


def test_playbook_mapping_satisfies_every_role_spec_for_every_image(tmp_path, rendered):
    code, output = run_play(tmp_path, ANSIBLE / "image.yml", rendered, "--tags", VALIDATE_ONLY)
    assert code == 0, {h: failure(output, h) for h, s in output["stats"].items() if s["failures"]}
    for host, variables in rendered.items():
        checked = {name.split(" : ")[0] for name, result in host_results(output, host)
                   if "Validating arguments" in name and not result.get("skipped")}
        assert {"common", "sku_tuning", "image_manifest", "generalize"} <= checked, host
        assert ("nvidia_driver" in checked) == ("nvidia_driver" in variables["builder_components"]), host
        assert ("rocm" in checked) == ("rocm" in variables["builder_components"]), host


BAD_VALUES = {  # host -> (change to the rendered variables, the option named, words in the message)
    "bad-flavor": (lambda v: v["builder_components"]["nvidia_driver"].update(flavor="closed"), "nvidia_driver_flavor",
                   ["open, proprietary", "closed"]),
    "bad-os": (lambda v: v.update(builder_os="centos7"), "common_os", ["debian12, ubuntu2204, ubuntu2404"]),
    "bad-bool": (lambda v: v.update(builder_has_infiniband="sometimes"), "common_enable_rdma", ["bool"]),
    "bad-list": (lambda v: v["builder_packages"].update(cuda="cuda-toolkit-13-0"), "cuda_packages", ["dict"]),
    "bad-dict": (lambda v: v.update(builder_skus=["Standard_ND96isr_H100_v5"]), "sku_tuning_skus", ["dict"]),
}


def test_a_bad_value_fails_before_any_task_naming_the_option(tmp_path, rendered):
    hosts = {}
    for host, (change, _, _) in BAD_VALUES.items():
        hosts[host] = copy.deepcopy(rendered["ndh100-train-debian12"])
        change(hosts[host])
    code, output = run_play(tmp_path, ANSIBLE / "image.yml", hosts, "--tags", VALIDATE_ONLY)
    assert code != 0
    for host, (_, option, words) in BAD_VALUES.items():
        message = failure(output, host)
        assert "Validating arguments against arg spec" in message and option in message, message
        assert all(word in message for word in words), message


def test_a_missing_required_option_is_named(tmp_path):
    plays = [{"name": "Fabric Manager without its variables", "hosts": "all", "gather_facts": False,
              "roles": [{"role": "fabric_manager", "vars": {"fabric_manager_packages": []}}]}]
    code, output = run_play(tmp_path, plays, {"host": {}})
    assert code != 0
    message = failure(output, "host")
    assert ("missing required arguments: fabric_manager_driver_version, fabric_manager_feed, "
            "fabric_manager_version") in message, message
    assert len(host_results(output, "host")) == 1  # nothing ran before the check


def test_package_feed_accepts_every_rendered_feed_and_tarball(tmp_path, rendered):
    specs = yaml.safe_load((ROLES / "package_feed/meta/argument_specs.yml").read_text())["argument_specs"]
    packages = ("{{ builder_packages.values() | flatten | selectattr('feed', 'equalto', item.key) }}")
    plays = [{"name": "Check the feeds and tarballs", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "Check each feed against the install entry point",
         "ansible.builtin.validate_argument_spec": {
             "argument_spec": specs["install"]["options"],
             "provided_arguments": {"package_feed_name": "{{ item.key }}", "package_feed_spec": "{{ item.value }}",
                                    "package_feed_packages": packages}},
         "loop": "{{ builder_feeds | dict2items }}"},
        {"name": "Check each tarball against the tarball entry point",
         "ansible.builtin.validate_argument_spec": {
             "argument_spec": specs["tarball"]["options"],
             "provided_arguments": {"package_feed_component": "{{ item.key }}",
                                    "package_feed_download": "{{ item.value }}", "package_feed_dest": "/opt/x"}},
         "loop": "{{ builder_downloads | dict2items }}"},
    ]}]
    code, output = run_play(tmp_path, plays, rendered)
    assert code == 0, {h: failure(output, h) for h, s in output["stats"].items() if s["failures"]}
    checked = [item for host in rendered for _, result in host_results(output, host) for item in result["results"]]
    assert len(checked) == sum(len(v["builder_feeds"]) + len(v["builder_downloads"]) for v in rendered.values())


BAD_INCLUDES = {  # host -> (entry point, its variables, words in the message)
    "no-sha256": ("tarball", {"package_feed_component": "pyxis", "package_feed_dest": "/opt/x",
                              "package_feed_download": {"url": "https://example.invalid/p.tar.gz",
                                                        "filename": "p.tar.gz"}}, ["sha256", "package_feed_download"]),
    "bad-kind": ("install", {"package_feed_name": "cuda", "package_feed_packages": [],
                             "package_feed_spec": {"kind": "rpm", "url": "https://example.invalid/"}},
                 ["apt, deb", "rpm"]),
    "no-hold": ("install", {"package_feed_name": "cuda", "package_feed_spec": {"kind": "apt"},
                            "package_feed_packages": [{"name": "cuda-toolkit-13-0", "version": "13.0.2-1",
                                                       "feed": "cuda"}]}, ["hold", "package_feed_packages"]),
}


def test_package_feed_rejects_a_bad_include_before_any_task(tmp_path):
    plays = [{"name": "A bad include", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": f"Include package_feed's {entry}", "when": f"entry == '{entry}'",
         "ansible.builtin.include_role": {"name": "package_feed", "tasks_from": entry}}
        for entry in sorted({entry for entry, _, _ in BAD_INCLUDES.values()})]}]
    hosts = {host: {"entry": entry, **variables} for host, (entry, variables, _) in BAD_INCLUDES.items()}
    code, output = run_play(tmp_path, plays, hosts)
    assert code != 0
    for host, (entry, _, words) in BAD_INCLUDES.items():
        message = failure(output, host)
        assert f"arg spec '{entry}'" in message and all(word in message for word in words), message


def test_image_manifest_runs_outside_the_playbook_with_its_own_variables(tmp_path):
    """Only the role's documented variables, no builder_*: the manifest as sorted JSON, then unchanged."""
    content = {"version": "2026.1201.0", "image": "x", "components": {"cuda": "13.0.2", "a": "1"}}
    path = tmp_path / "etc/builder/image.json"
    plays = [{"name": "Write a manifest", "hosts": "all", "gather_facts": False, "roles": [
        {"role": "image_manifest", "vars": {"image_manifest_content": content, "image_manifest_path": str(path)}}]}]
    code, output = run_play(tmp_path, plays, {"host": {}})
    assert code == 0 and output["stats"]["host"]["changed"] == 1, output["stats"]
    assert path.read_text() == json.dumps(content, indent=4, sort_keys=True) + "\n"
    code, output = run_play(tmp_path, plays, {"host": {}})
    assert code == 0 and output["stats"]["host"]["changed"] == 0, output["stats"]


def test_update_initramfs_runs_for_the_role_that_notified_it(tmp_path):
    """Two roles declare the initramfs role; each notifies "Update initramfs" when it runs. The instance of
    the role that ran runs (check mode: "would have run"), the other is skipped on its role's condition."""
    roles = tmp_path / "roles"
    for name in ("first", "second"):
        (roles / name / "meta").mkdir(parents=True)
        (roles / name / "tasks").mkdir()
        (roles / name / "meta/main.yml").write_text(yaml.safe_dump(
            {"dependencies": [{"role": "initramfs", "vars": {"initramfs_for": name}}]}))
        (roles / name / "tasks/main.yml").write_text(yaml.safe_dump([
            {"name": "Change something", "ansible.builtin.debug": {"msg": name}, "changed_when": True,
             "notify": "Update initramfs"}]))
    plays = [{"name": "Two roles share the handler", "hosts": "all", "gather_facts": False, "roles": [
        {"role": "first", "when": "run_first"}, {"role": "second", "when": "not run_first"}]}]
    code, output = run_play(tmp_path, plays, {"h1": {"run_first": True}, "h2": {"run_first": False}}, "--check",
                            roles_path=(roles,))
    assert code == 0, output["stats"]
    for host, ran, skipped in (("h1", "first", "second"), ("h2", "second", "first")):
        results = {name.removeprefix("initramfs : "): result for name, result in host_results(output, host)}
        assert results[f"Update initramfs for {ran}"]["msg"] == "Command would have run if not in check mode"
        assert "false_condition" in results[f"Update initramfs for {skipped}"], results


def test_ansible_doc_reads_every_role_spec(tmp_path):
    names = sorted(p.parent.parent.name for p in ROLES.glob("*/meta/argument_specs.yml"))
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-doc"), "-t", "role", "-r", str(ROLES), "--json",
                             *names], capture_output=True, text=True, timeout=300, check=True,
                            env={**os.environ, "ANSIBLE_HOME": str(tmp_path / ".ansible")})
    docs = json.loads(result.stdout)
    assert sorted(docs) == names
    for name, doc in docs.items():
        specs = yaml.safe_load((ROLES / name / "meta/argument_specs.yml").read_text())["argument_specs"]
        assert {entry: set(spec["options"]) for entry, spec in doc["entry_points"].items()} == \
            {entry: set(spec["options"]) for entry, spec in specs.items()}, name
