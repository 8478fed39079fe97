"""The playbook and roles, read statically: layer tags match builder/stack/layers.py; each role reads only its
own variables (the playbook maps the rendered builder_* variables onto them), every default and var is read,
specs document the defaults, per-OS vars really differ, handlers are declared and notified; lint is clean and
no role repeats a version the catalog sets. Running them: test_roles.py and the converges."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import jinja2
import jinja2.meta
import pytest
import yaml

from builder.catalog.loader import load_catalog
from builder.local.keys import PER_BUILD, per_build_layers
from builder.stack.layers import FINAL_ROLES, LAYERS, MANIFEST_TAG

REPO = Path(__file__).resolve().parent.parent.parent
ANSIBLE = REPO / "ansible"
ROLES = ANSIBLE / "roles"
# Values that are Jinja expressions without braces.
RAW_KEYS = {"when", "changed_when", "failed_when", "until", "that"}
# Names any role may read besides its own variables: Ansible's, and the state package_feed leaves for the tasks
# that skip what is in place (documented in roles/package_feed/tasks/state.yml).
SHARED_NAMES = {"item", "omit", "lookup", "query", "role_path", "package_feed_state", "package_feed_state_stale"}


class _Any(dict):
    """Filters and tests by any name (Ansible's and collections'): only the variable names matter here."""

    def __contains__(self, name):
        return True

    def __getitem__(self, name):
        return lambda *args, **kwargs: None

    get = __getitem__


ENV = jinja2.Environment(extensions=["jinja2.ext.do", "jinja2.ext.loopcontrols"])
ENV.filters, ENV.tests = _Any(), _Any()


def playbook_roles() -> list[dict]:
    plays = yaml.safe_load((ANSIBLE / "image.yml").read_text())
    assert len(plays) == 1
    return plays[0]["roles"]


def role_names() -> list[str]:
    return sorted(p.name for p in ROLES.iterdir() if p.is_dir())


def load(path: Path):
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def jinja_names(text: str) -> set[str]:
    """Variables a template reads (not its own locals; `_` is a throwaway ``{% set %}`` target)."""
    return set(jinja2.meta.find_undeclared_variables(ENV.parse(text))) - {"_"}


def expressions(node, key: str | None = None):
    """Every template string in a parsed YAML document (bare conditionals wrapped in braces)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from expressions(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v, key)
    elif isinstance(node, str):
        yield f"{{{{ {node} }}}}" if key in RAW_KEYS else node


@cache
def references(role: str) -> dict[str, set[str]]:
    """``file -> names it reads`` for the role's tasks, handlers, templates and vars (defaults are literal)."""
    folder = ROLES / role
    found = {}
    for file in sorted(folder.rglob("*")):
        if not file.is_file() or file.parts[len(folder.parts)] == "meta":
            continue
        texts = list(expressions(load(file))) if file.suffix == ".yml" else [file.read_text()]
        found[str(file.relative_to(ROLES))] = set().union(*(jinja_names(t) for t in texts))
    return found


def task_files(role: str, part: str) -> list[Path]:
    return sorted((ROLES / role / part).glob("*.yml"))


def walk_tasks(tasks):
    for task in tasks or []:
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk_tasks(task.get(key))


def dependencies(role: str) -> list[dict]:
    deps = (load(ROLES / role / "meta/main.yml") or {}).get("dependencies") or []
    return [{"role": d} if isinstance(d, str) else d for d in deps]


def all_dependencies(role: str) -> set[str]:
    found: set[str] = set()
    for dep in dependencies(role):
        found |= {dep["role"]} | all_dependencies(dep["role"])
    return found


def spec_options(role: str) -> dict[str, dict]:
    """Every option of every entry point of the role's argument spec (same name: same spec)."""
    specs = (load(ROLES / role / "meta/argument_specs.yml") or {}).get("argument_specs", {})
    return {name: option for entry in specs.values() for name, option in (entry.get("options") or {}).items()}


def comments(path: Path) -> dict[str, str]:
    """``variable -> the comment lines just above it``, joined."""
    out, block = {}, []
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            block.append(line.lstrip("# ").strip())
        elif match := re.match(r"^([a-z0-9_]+):", line):
            out[match.group(1)] = " ".join(block)
            block = []
        elif not line.startswith(" "):
            block = []
    return out


def test_playbook_tags_every_role_with_its_layer():
    tags = {entry["role"]: entry["tags"] for entry in playbook_roles()}
    for layer in LAYERS:
        for role in layer.roles:
            assert tags[role] == [layer.name], role
    for role in FINAL_ROLES:
        assert tags[role] == [role]
    assert playbook_roles()[-1]["role"] == FINAL_ROLES[-1]
    known = {layer.name for layer in LAYERS} | {MANIFEST_TAG} | set(FINAL_ROLES)
    assert {tag for entry in playbook_roles() for tag in entry["tags"]} == known
    assert [entry["role"] for entry in playbook_roles() if entry["tags"] == [MANIFEST_TAG]] == ["image_manifest"]


def test_per_build_values_reach_only_the_manifest_role():
    """Only the manifest step (its own tag, after the layers) gets the version and commit: every layer's
    snapshot can be reused by the next build. Roles never read builder_* variables, so the playbook's
    mapping is the only place they could enter."""
    assert per_build_layers({}) == set()
    order = [entry["tags"][0] for entry in playbook_roles()]
    assert order.index(MANIFEST_TAG) > max(order.index(layer.name) for layer in LAYERS)
    assert order.index(MANIFEST_TAG) < min(order.index(role) for role in FINAL_ROLES)
    receiving = {entry["role"] for entry in playbook_roles()
                 if set().union(*map(jinja_names, expressions(entry.get("vars", {})))) & set(PER_BUILD)}
    assert receiving == {"image_manifest"}
    baking = {role for role in role_names() for names in references(role).values() if names & set(PER_BUILD)}
    assert baking == set()


def test_roles_read_only_their_own_variables():
    """A role's tasks, handlers, templates and vars read its own variables (prefix <role>_), Ansible's, and
    package_feed's state; nothing rendered for the playbook (builder_*, package_feed, package_feed_base)."""
    for role in role_names():
        for file, names in references(role).items():
            foreign = {n for n in names - SHARED_NAMES if not n.startswith((f"{role}_", "ansible_"))}
            assert not foreign, f"{file} reads {sorted(foreign)}"


def test_playbook_passes_each_role_only_options_of_its_spec():
    for entry in playbook_roles():
        role, passed = entry["role"], set(entry.get("vars", {}))
        options = spec_options(role)
        assert passed <= set(options), f"{role}: {sorted(passed - set(options))} are not in its argument spec"
        required = {name for name, option in options.items() if option.get("required")}
        assert required <= passed, f"{role}: the playbook does not pass {sorted(required - passed)}"
        assert all(name.startswith(f"{role}_") for name in passed), role


def test_every_default_var_and_option_is_read():
    for role in role_names():
        folder = ROLES / role
        declared = set(load(folder / "defaults/main.yml") or {}) | set(spec_options(role))
        for file in task_files(role, "vars"):
            declared |= set(load(file) or {})
        read = set().union(*references(role).values())
        assert declared <= read, f"{role}: nothing reads {sorted(declared - read)}"


def test_argument_specs_document_every_default():
    """Each default is an option with the same value and, as description, its comment; an option without a
    default is required (the playbook passes it) and absent from defaults; types are real types."""
    for role in role_names():
        folder = ROLES / role
        defaults = load(folder / "defaults/main.yml") or {}
        notes = comments(folder / "defaults/main.yml") if defaults else {}
        options = spec_options(role)
        if not (folder / "tasks").is_dir():  # a handler-only role (initramfs) has nothing to validate
            assert not options and not (folder / "meta/argument_specs.yml").exists(), role
            continue
        assert set(defaults) <= set(options), f"{role}: {sorted(set(defaults) - set(options))} not in the spec"
        for name, option in options.items():
            where = f"{role}: {name}"
            assert option["type"] in {"str", "bool", "int", "list", "dict"}, where
            assert option["type"] != "list" or option.get("elements") in {"str", "dict"}, where
            if option.get("required"):
                assert "default" not in option and name not in defaults, where
                continue
            assert name in defaults and option.get("default") == defaults[name], where
            assert option["description"] == notes[name], where
            if "choices" in option:
                assert defaults[name] in option["choices"], where


def test_per_os_vars_only_hold_what_differs():
    """vars/<os>.yml sets only what differs from vars/main.yml (loaded for the other OSes), for an OS the
    role's <role>_os accepts, and the role loads it with first_found."""
    os_files = {role: [p for p in task_files(role, "vars") if p.name != "main.yml"] for role in role_names()}
    for role, files in os_files.items():
        if not files:
            continue
        main = load(ROLES / role / "vars/main.yml") or {}
        choices = spec_options(role)[f"{role}_os"]["choices"]
        for file in files:
            assert file.stem in choices, file
            values = load(file) or {}
            assert values, file
            for name, value in values.items():
                assert name in main and main[name] != value, f"{file}: {name}"
        loaders = [task for file in task_files(role, "tasks") for task in walk_tasks(load(file))
                   if "ansible.builtin.include_vars" in task]
        assert any("first_found" in str(task) and "main.yml" in str(task) for task in loaders), role
    assert any(os_files.values())


def test_handlers_are_declared_and_notified():
    """A role notifies only handlers of its own or of roles it lists as dependencies; every handler is notified
    by its role or by one that depends on it."""
    handlers: dict[str, set[str]] = {}  # role -> names and listen topics
    notified: dict[str, set[str]] = {}
    for role in role_names():
        handlers[role] = set()
        for handler in walk_tasks(load(ROLES / role / "handlers/main.yml")):
            listen = handler.get("listen", [])
            handlers[role] |= {handler["name"], *([listen] if isinstance(listen, str) else listen)}
        notified[role] = set()
        for part in ("tasks", "handlers"):
            for file in task_files(role, part):
                for task in walk_tasks(load(file)):
                    notify = task.get("notify", [])
                    notified[role] |= set([notify] if isinstance(notify, str) else notify)
    for role in role_names():
        reachable = set().union(handlers[role], *(handlers[dep] for dep in all_dependencies(role)))
        assert notified[role] <= reachable, f"{role} notifies undeclared {sorted(notified[role] - reachable)}"
        for handler in handlers[role]:
            if "{{" in handler:  # a templated name; notified through its listen topic
                continue
            users = {role} | {other for other in role_names() if role in all_dependencies(other)}
            assert any(handler in notified[user] for user in users), f"{role}: '{handler}' is never notified"


def test_shared_handler_role_is_one_instance_per_dependent():
    """A handler role several roles depend on runs with the `when` of the role it was declared by; each
    dependency passes its own name so each gets its own instance (see roles/initramfs/handlers/main.yml)."""
    declared: dict[str, list[tuple[str, dict]]] = {}
    for role in role_names():
        for dep in dependencies(role):
            declared.setdefault(dep["role"], []).append((role, dep.get("vars", {})))
    for dep, users in declared.items():
        if len(users) < 2 or not (ROLES / dep / "handlers/main.yml").exists():
            continue
        assert all(params == {f"{dep}_for": role} for role, params in users), dep
        for handler in load(ROLES / dep / "handlers/main.yml"):
            assert f"{dep}_for" in handler["name"] and handler.get("listen"), dep


def test_no_custom_module_folder_inside_roles():
    """Custom modules come from ansible/library through ansible.cfg, not per-role links."""
    assert not [p for p in ROLES.glob("*/library")]
    assert re.search(r"^library = \./library$", (ANSIBLE / "ansible.cfg").read_text(), re.M)


def test_no_catalog_version_is_written_in_ansible():
    catalog = load_catalog(REPO / "images")
    pins: set[str] = set()
    for image in catalog.buildable():
        for spec in image.model.components.model_dump(exclude_none=True).values():
            version = str(spec["version"])
            if len(version) >= 5:  # long enough not to match unrelated numbers
                pins.add(version)
            if spec.get("download"):
                pins.add(spec["download"]["sha256"])
    text = "\n".join(p.read_text() for p in ANSIBLE.rglob("*") if p.is_file())
    found = sorted(v for v in pins if re.search(rf"(?<![\w.]){re.escape(v)}(?![\w.])", text))
    assert not found, f"catalog pins repeated in ansible/: {found}"


def test_no_shell_module_in_roles():
    text = "\n".join(p.read_text() for p in ROLES.rglob("*.yml"))
    assert "ansible.builtin.shell" not in text and "\n  shell:" not in text


@pytest.mark.slow
def test_ansible_lint_production_profile_is_clean(tmp_path):
    lint = Path(sys.executable).parent / "ansible-lint"
    if not lint.exists() and shutil.which("ansible-lint") is None:
        pytest.skip("ansible-lint is not installed (pip install -e '.[dev]')")
    # ANSIBLE_CONFIG as converges and Packer set it: the custom modules come from its `library`.
    result = subprocess.run([str(lint if lint.exists() else "ansible-lint"), "--profile", "production", "--offline",
                             "--nocolor", "ansible/"], cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={"HOME": str(tmp_path), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
                                 "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
