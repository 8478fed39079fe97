"""Every command README.md and docs/*.md show: it exists with the options shown, and each one that can run offline
runs and exits as the doc says.

Commands are the lines of fenced ``bash``/``sh``/``shell``/``console`` blocks (``\\`` continuations joined), the
lines of other fenced and of indented code blocks that start like a command (``builder``, ``.venv/bin/``, ``sudo``,
``bash``, ``export``, ``(cd``), and inline code that starts with ``builder ``. Each is, by its text:

* a synopsis (it holds a placeholder: ``IMAGE``, ``[--x]``, ``a|b``, ``<id>``, ``...``): not run as it stands;
* in ``RUN``: run offline with the venv's ``builder`` in a temporary folder and state, exit code as given;
* in ``NOT_RUN``: not runnable here or not worth running, with the reason.

Every ``builder`` command, in any class, must name a real command and only options it has. A command in none of
the three classes fails the test: classify it when a doc gains one.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from builder.catalog.loader import load_catalog
from builder.cli import app
from tests.conftest import REPO, builder_executable

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_FENCES = {"bash", "sh", "shell", "console"}
COMMAND_START = re.compile(r"^(builder\s|\.venv/bin/|sudo\s|bash\s|export\s|\(cd\s)")
PLACEHOLDER = re.compile(r"(?<![\w$-])[A-Z][A-Z0-9_]*(?![\w=])|[\[\]|<>…]|\.\.\.")


@dataclass(frozen=True)
class Run:
    code: int = 0
    catalog_copy: bool = False  # the command writes next to the catalog: run it on a copy
    slow: bool = False  # builds the stand-in feed (gpg, dpkg-deb, apt-ftparchive): run by the slow-marked test only


# Offline-runnable commands, exactly as the docs show them, and the exit code the doc implies.
RUN: dict[str, Run] = {
    "builder --help": Run(),
    "builder builds": Run(),
    "builder builds --json": Run(),
    "builder cache prune": Run(),
    "builder docs": Run(catalog_copy=True),
    "builder docs --check": Run(),
    "builder doctor": Run(),  # as root with the tools .ci/setup installs, like the rest of the suite
    "builder list": Run(),
    "builder matrix": Run(),
    "builder plan ndh100-train-layered --target azure": Run(),
    "builder render ndh100-train --target azure --out out/": Run(),
    # builds the stand-in feed in its state folder first
    "builder render ndh100-train --target local --out build/ --feed stand-in --os debian12": Run(slow=True),
    "builder build ndh100-train --target azure --dry-run": Run(),
    "builder show ndh100-train": Run(),
    "builder validate": Run(),
    "builder validate --all": Run(),
    ".venv/bin/builder builds": Run(),
    ".venv/bin/builder cache ls": Run(),
    **{f"builder reference {name} --format cli": Run() for name in sorted(
        i.name for i in load_catalog(REPO / "images").buildable())},
}

ROOT_BUILD = "root and minutes: a full local build (tests/local builds and boots one, marked slow)"
NEEDS_BUILD = "needs a local build first (root and minutes; tests/local cover it)"
AZURE = "needs an Azure subscription"
NAME = "names the command; its arguments are in the text around it"
SHELL = "sets shell variables for the commands that follow"
# Commands the docs show that are not run here, and why.
NOT_RUN: dict[str, str] = {
    "bash .ci/setup": "root, network and ~13 minutes: installs the tools (CI runs it)",
    "bash .ci/setup && .venv/bin/builder build ndh100-train --feed stand-in": ROOT_BUILD,
    "bash .ci/setup && .venv/bin/pytest": "the whole suite: about 40 minutes",
    ".venv/bin/builder build ndh100-train --feed stand-in": ROOT_BUILD,
    "builder build ndh100-train --target azure [--on-error abort] [--json]": AZURE,
    "builder doctor --target azure": "its exit code depends on whether Packer and its plugins are installed "
                                     "(tests/unit/test_doctor* check both outcomes)",
    "builder patch --target azure": AZURE + ": Packer builds of the outdated images",
    "builder patch --target azure --json": AZURE + ": Packer builds of the outdated images",
    "builder patch --target azure --dry-run --json": AZURE + ": reads the gallery and the vendors' feeds",
    "builder patch --target azure --dry-run": AZURE + ": reads the gallery and the vendors' feeds",
    "builder outdated": "reads the vendors' package feeds over the network",
    "builder outdated --json": "reads the vendors' package feeds over the network",
    "builder emulator --port 0 --state /tmp/arm": "a server that runs until Ctrl-C and writes /tmp/arm "
                                                  "(tests/publish start it)",
    "builder emulator --state .builder/gallery --port 8443": "a server on a fixed port, serving a local build's "
                                                             "gallery (needs a local build first)",
    "builder versions ndh100-train": NEEDS_BUILD + " (else exits 2 asking for a subscription)",
    "builder promote ndh100-train 2026.1130.0": NEEDS_BUILD,
    "builder promote ndh100-train 2026.1129.0": AZURE + " and that version published",
    'builder yank ndh100-train 2026.1129.0 --reason "driver regression" --yes': AZURE + " and that version published",
    "builder gc ndh100-train --keep 5 --dry-run": AZURE + " (or a local build's gallery)",
    "builder report ndh100-train-20261201-101500-ab12": NEEDS_BUILD + ": that build id",
    "builder doctor ndh100-train --target azure": AZURE + ": checks the credential, quota and rights",
    "sudo builder verify ndh100-train --connection chroot --host /path/rootfs --select pre-generalize":
        "root and a converged root filesystem (tests/verify run the suites on converged trees)",
    "builder verify ndh100-train --connection ssh --host root@vm --suite all --junit v.xml --json v.json":
        "needs a VM reachable over SSH",
    "builder verify ndh100-train --connection local --suite hardware --skus auto": "needs the GPUs of a target SKU",
    "builder converge --rootfs /path/to/rootfs --vars build/ansible-vars.yml --tags base,gpu,fabric,image,manifest":
        "root and a root filesystem: a chroot converge of minutes (tests/ansible converge four images)",
    "export BUILDER_ARM_ENDPOINT=https://127.0.0.1:8443 BUILDER_ARM_CERT=.builder/gallery/emulator-cert.pem "
    "AZURE_SUBSCRIPTION_ID=00000000-0000-0000-0000-000000000000": SHELL,
    "APP_ID=<application (client) id>": SHELL,
    "for env in staging production nightly; do": "the loop around the az command",
    "done": "the loop around the az command",
    "(cd out && packer init . && packer build -var-file=ndh100-train.pkrvars.json .)": AZURE + ": a Packer build",
    **{f"builder {name}": NAME for name in (
        "build", "converge", "diff", "emulator", "gc", "patch", "plan", "promote", "publish", "reference",
        "render", "report", "verify", "versions", "build --feed stand-in", "build --target azure",
        "matrix --changed-since", "render --feed stand-in", "render --target azure", "yank --reason")},
}


@dataclass(frozen=True)
class Shown:
    text: str
    where: str


def _strip_comment(line: str) -> str:
    """``line`` without a shell comment (a ``#`` after whitespace, outside quotes)."""
    quote, prev = "", " "
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote and prev != "\\" else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and prev.isspace():
            return line[:i]
        prev = ch
    return line


def _open_quote(text: str) -> bool:
    """Whether ``text`` ends inside a quoted string (the command goes on on the next line)."""
    quote, prev = "", ""
    for ch in text:
        if quote:
            quote = "" if ch == quote and prev != "\\" else quote
        elif ch in "'\"":
            quote = ch
        prev = ch
    return bool(quote)


def _block_commands(lines: list[str], shell: bool) -> list[tuple[int, str]]:
    """(line number, command) of one code block: continuations joined, comments and console output left out."""
    out: list[tuple[int, str]] = []
    console = any(raw.startswith("$ ") for _, raw in lines)
    for number, raw in lines:
        line = raw.rstrip()
        if console:  # a console transcript: commands after "$ ", the rest is output
            if not raw.startswith("$ "):
                continue
            line = line[2:]
        continued = out and (out[-1][1].endswith("\\") or (shell and _open_quote(out[-1][1]))
                             or (not shell and raw[:1].isspace() and line.strip()))
        if continued:
            out[-1] = (out[-1][0], out[-1][1].removesuffix("\\").rstrip() + " " + line.strip())
        elif line.strip() and (shell or COMMAND_START.match(line.strip())):
            out.append((number, line.strip()))
    return [(n, " ".join(_strip_comment(c).split())) for n, c in out if _strip_comment(c).strip()]


def shown_commands(path: Path) -> list[Shown]:
    """Every command ``path`` shows (see the module docstring)."""
    found: list[Shown] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    fence: str | None = None
    block: list[tuple[int, str]] = []
    indented: list[tuple[int, str]] = []
    blank_before = True
    for number, line in enumerate(lines, 1):
        m = re.match(r"^\s*```(\S*)", line)
        if fence is not None:
            if m:
                found += [Shown(c, f"{path.name}:{n}") for n, c in _block_commands(block, fence in SHELL_FENCES)]
                fence, block = None, []
            else:
                block.append((number, line))
            continue
        if m:
            fence, block = m.group(1).lower(), []
            continue
        if line.startswith("    ") and (blank_before or indented) and line.strip():
            indented.append((number, line[4:]))
            continue
        if indented and line.strip():
            indented = []
        if indented and not line.strip():
            found += [Shown(c, f"{path.name}:{n}") for n, c in _block_commands(indented, False)]
            indented = []
        blank_before = not line.strip()
        for span in re.findall(r"`(builder [^`]+)`", line):
            found.append(Shown(" ".join(span.replace("\\|", "|").split()), f"{path.name}:{number}"))
    found += [Shown(c, f"{path.name}:{n}") for n, c in _block_commands(indented, False)]
    return found


ALL = [shown for path in DOCS for shown in shown_commands(path)]


def is_synopsis(text: str) -> bool:
    return bool(PLACEHOLDER.search(text))


def _builder_args(text: str) -> list[str] | None:
    """The arguments after ``builder`` (None when ``text`` does not run builder)."""
    for part in re.split(r"&&|;|\|\s", text):
        words = part.split()
        while words and (words[0] in ("sudo", "(cd") or re.fullmatch(r"\w+=\S*", words[0])):
            words = words[1:]
        if words and words[0] in ("builder", ".venv/bin/builder"):
            return words[1:]
    return None


def _problems_with_options(text: str) -> list[str]:
    """A nonexistent command or option in the builder command ``text`` (synopses included)."""
    args = _builder_args(text)
    if args is None:
        return []
    command: click.Command = app
    path: list[str] = []
    options = {o for p in app.params for o in p.opts} | {"--help", "-h", "--version"}
    problems = []
    takes_value = {o for p in app.params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
    skip = False
    for word in args:
        token = word.split("=", 1)[0].strip("[]()|,")
        if skip:
            skip = False
            continue
        if token.startswith("-") and isinstance(command, click.Group):
            skip = token in takes_value and "=" not in word  # a group option's value is no command
        if token.startswith("-"):
            if re.fullmatch(r"--?[a-z][\w-]*", token) and token not in options:
                problems.append(f"'{' '.join(['builder', *path])}' has no option {token}")
            continue
        if not isinstance(command, click.Group):
            continue  # an argument of the command
        names = [n for n in word.strip("[]").split("|") if n]
        subs = [command.commands.get(n) for n in names]
        if not all(subs):
            if not PLACEHOLDER.search(word):
                problems.append(f"'builder {' '.join([*path, word])}' is no command")
            break
        command, path = subs[0], [*path, names[0]]
        options = set().union(*({o for p in s.params for o in p.opts} for s in subs)) | {"--help", "-h"}
    return problems


def test_every_shown_command_is_classified():
    unknown = sorted({s.text: s.where for s in ALL if not is_synopsis(s.text) and s.text not in RUN
                      and s.text not in NOT_RUN}.items())
    assert not unknown, ("classify these commands in RUN or NOT_RUN (tests/deploy/test_docs_commands.py):\n"
                         + "\n".join(f"{where}: {text}" for text, where in unknown))


def test_the_lists_name_only_shown_commands():
    shown = {s.text for s in ALL}
    stale = sorted((set(RUN) | set(NOT_RUN)) - shown)
    assert not stale, f"no doc shows these any more: drop them from RUN/NOT_RUN: {stale}"
    assert not set(RUN) & set(NOT_RUN)


def test_every_builder_command_and_option_exists():
    problems = sorted({f"{s.where}: {p}  ({s.text})" for s in ALL for p in _problems_with_options(s.text)})
    assert not problems, "\n".join(problems)


def _run(text: str, spec: Run, work: Path) -> tuple[str, int, str]:
    work.mkdir(parents=True)
    if spec.catalog_copy:
        shutil.copytree(REPO / "images", work / "images")
        (work / "docs").mkdir()
        shutil.copy(REPO / "docs" / "images.md", work / "docs" / "images.md")
    args = _builder_args(text)
    assert args is not None and text.split()[0] in ("builder", ".venv/bin/builder"), text
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AZURE_", "ARM_", "BUILDER_ARM_", "BUILDER_CATALOG", "BUILDER_SNAPSHOTS"))}
    env.update({"PYTHONPATH": str(REPO), "BUILDER_STATE": str(work / ".builder"), "BUILDER_CACHE": str(work / "cache"),
                "COLUMNS": "200"})
    proc = subprocess.run([*builder_executable(), *shlex.split(" ".join(args))], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    return text, proc.returncode, proc.stderr[-2000:]


def _check_runs(slow: bool) -> None:
    shown = {s.text for s in ALL}
    todo = [(text, spec) for text, spec in RUN.items() if text in shown and spec.slow == slow]
    # A short folder: gpg-agent's socket (the stand-in feed signs with gpg) must fit a Unix socket path.
    work = Path(tempfile.mkdtemp(prefix="docs-", dir="/tmp"))
    try:
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            results = list(pool.map(lambda item: _run(*item[1], work / str(item[0])), enumerate(todo)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wrong = [f"{text}: exit {code}, the doc implies {RUN[text].code}\n{err}" for text, code, err in results
             if code != RUN[text].code]
    assert not wrong, "\n\n".join(wrong)


def test_offline_commands_exit_as_the_docs_say():
    _check_runs(slow=False)


@pytest.mark.slow
def test_slow_offline_commands_exit_as_the_docs_say():
    _check_runs(slow=True)


SHARED_NOTE = re.compile(r"\.\./shared|shared/reference|/work/shared|upstream-facts|peers-packer-aib\.md|gpu-stack\.md")


def test_no_doc_or_catalog_points_outside_the_repository():
    """The repository stands alone: no doc, catalog file, code, data, role, test or workflow cites the project's
    ../shared notes (users do not have them): the docs, images/, builder/ (its data too), ansible/, tests/ and
    .github/, except this file, which names the pattern."""
    trees = ("images", "builder", "ansible", "tests", ".github")
    files = [*DOCS, REPO / "pyproject.toml", *(p for tree in trees for p in sorted((REPO / tree).rglob("*")))]
    files = [p for p in files if p.is_file() and "__pycache__" not in p.parts and p != Path(__file__).resolve()]
    assert REPO / "builder" / "data" / "feeds" / "cuda-ubuntu2204.yaml" in files  # the recorded data is covered
    hits = [f"{path.relative_to(REPO)}:{n}: {line.strip()}" for path in files
            for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if SHARED_NOTE.search(line)]
    assert not hits, "\n".join(hits)


REPO_PATH = re.compile(r"`((?:tests|builder|images|ansible|bench|docs|\.github|\.ci)/[^`\s:]*)")
FUTURE_PATHS = {"docs/evidence/"}  # where the first hardware run's output will go (docs/verification.md says so)


def test_every_linked_or_named_repository_path_exists():
    missing = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for link in re.findall(r"\]\(([^)\s]+)\)", text):
            target = link.split("#", 1)[0]
            if target and not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
                missing.append(f"{doc.name}: link {link}")
        for path in REPO_PATH.findall(text):
            path = path.split("::", 1)[0].rstrip(").,;")
            if not re.search(r"[<*{]", path) and path not in FUTURE_PATHS and not (REPO / path).exists():
                missing.append(f"{doc.name}: {path}")
    assert not missing, "\n".join(sorted(set(missing)))


def test_readme_image_table_lists_every_buildable_image():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("Shipped images", 1)[1].split("\n\n", 2)[1]
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", table, re.M)
    catalog = sorted(i.name for i in load_catalog(REPO / "images").buildable())
    assert sorted(listed) == catalog, "README's image table differs from the catalog's buildable images"


def test_readme_rule_table_lists_every_rule():
    from builder.catalog.rules import RULES

    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text.split("## Stack validation rules", 1)[1].split("\n## ", 1)[0]
    assert sorted(re.findall(r"^\| `([a-z-]+)` \|", table, re.M)) == sorted(rule_id for rule_id, _, _ in RULES)


@pytest.mark.parametrize("sample, expected", [
    ("```bash\nbuilder list   # all\nbuilder show x \\\n  --explain\n```\n",
     ["builder list", "builder show x --explain"]),
    ("```bash\naz x --p \"{\n  a: 1}\"\n```\n", ['az x --p "{ a: 1}"']),
    ("```\n+-- a diagram\nbuilder validate\n```\n", ["builder validate"]),
    ("Run `builder docs --check` here.\n", ["builder docs --check"]),
    ("text\n\n    builder builds   # history\n\nmore\n", ["builder builds"]),
    ("```console\n$ builder list\nimage  os\n```\n", ["builder list"]),
])
def test_extraction(tmp_path, sample, expected):
    path = tmp_path / "doc.md"
    path.write_text(sample)
    assert [s.text for s in shown_commands(path)] == expected


def test_an_unknown_option_is_caught():
    assert _problems_with_options("builder plan IMAGE --packages") == ["'builder plan' has no option --packages"]
    assert _problems_with_options("builder nosuch IMAGE") == ["'builder nosuch' is no command"]
    assert _problems_with_options("builder IMAGE --json") == []  # a placeholder where the command goes
    assert _problems_with_options("builder cache ls|prune --older-than 3") == []
