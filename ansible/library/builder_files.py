#!/usr/bin/python
# Written for builder (ansible/): several small files in one module call.
"""Write several small files (content, owner, group, mode) and symbolic links, or remove paths, in one module call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: builder_files
short_description: Write several small files and links, or remove paths, in one module call
description:
  - Writes each file in O(files) atomically when its content differs, then sets its owner, group and mode.
  - A file's content is O(files[].content), or the content of another file on the target (O(files[].source), e.g. a
    freshly built binary); an entry with O(files[].link) is a symbolic link instead, replaced when it points
    elsewhere or is a file (never a folder); an entry with O(files[].absent) is removed (a folder with its contents,
    a link itself, never what it points to).
  - One module call instead of one C(ansible.builtin.copy) per file (each copy is a stat and a file call plus a
    temporary folder); re-runs of the image playbook are dominated by such calls.
  - The parent folder of each file must exist unless O(parents) is set. Supports check mode and diff mode.
options:
  files:
    description: The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      path: {description: Absolute path of the file., type: path, required: true}
      content: {description: The whole content of the file (exactly one of content/source/link)., type: str}
      source:
        description:
          - Path of a file on the target whose content to write. In check mode a missing source (an earlier step
            that would have made it did not run) counts as a change.
        type: path
      link:
        description: Make O(files[].path) a symbolic link to this target (owner, group and mode do not apply).
        type: str
      absent:
        description: Remove O(files[].path) (file, link or folder with its contents) when it exists.
        type: bool
      owner: {description: Owner name., type: str, default: root}
      group: {description: Group name., type: str, default: root}
      mode: {description: Octal mode as a string (e.g. C("0644")) ., type: str, default: "0644"}
      force: {description: Replace an existing file; C(false) only creates it when absent., type: bool, default: true}
  parents:
    description: Create missing parent folders (owner root, mode 0755) instead of failing.
    type: bool
    default: false
author: builder maintainers
"""

EXAMPLES = r"""
- name: Write the limits and sysctl files
  builder_files:
    files:
      - {path: /etc/security/limits.d/90-builder.conf, content: "* soft nofile 1048576\n"}
      - {path: /usr/local/sbin/tool, content: "#!/bin/sh\n", mode: "0755"}
      - {path: /usr/local/bin/exporter, link: /opt/exporter-1.0/exporter}
      - {path: /usr/local/lib/plugin.so, source: /usr/local/src/plugin/plugin.so, mode: "0755"}
      - {path: /var/cache/builder, absent: true}
"""

RETURN = r"""
changed_paths:
  description: The paths written, changed or removed (or that would be, in check mode).
  type: list
  elements: str
  returned: always
"""

import grp  # noqa: E402
import os  # noqa: E402
import pwd  # noqa: E402
import shutil  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402


def _wanted(module: AnsibleModule, spec: dict) -> tuple[bytes | None, int, int, int]:
    """Content (None: a source that does not exist yet, in check mode), mode, uid and gid of one file."""
    try:
        mode = int(str(spec["mode"]), 8)
        uid = pwd.getpwnam(spec["owner"]).pw_uid
        gid = grp.getgrnam(spec["group"]).gr_gid
    except (KeyError, ValueError) as exc:
        module.fail_json(msg=f"{spec['path']}: bad owner, group or mode: {exc}")
    if spec["source"] is None:
        return spec["content"].encode(), mode, uid, gid
    try:
        with open(spec["source"], "rb") as handle:
            return handle.read(), mode, uid, gid
    except FileNotFoundError:
        if module.check_mode:
            return None, mode, uid, gid
        module.fail_json(msg=f"{spec['path']}: the source {spec['source']} does not exist")


def _parents(module: AnsibleModule, parent: str) -> bool:
    """Create ``parent`` and its missing ancestors (root, 0755); True when one was (or would be) made."""
    if os.path.isdir(parent):
        return False
    if not module.params["parents"]:
        module.fail_json(msg=f"the folder {parent} does not exist")
    if not module.check_mode:
        os.makedirs(parent, mode=0o755, exist_ok=True)
    return True


def _link(module: AnsibleModule, spec: dict, diffs: list[dict]) -> bool:
    path, target = spec["path"], spec["link"]
    _parents(module, os.path.dirname(path))
    if os.path.islink(path) and os.readlink(path) == target:
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        module.fail_json(msg=f"{path}: exists and is a folder, not a link")
    if module._diff:
        before = os.readlink(path) if os.path.islink(path) else ("" if not os.path.lexists(path) else "(a file)")
        diffs.append({"before_header": path, "after_header": path, "before": f"-> {before}\n" if before else "",
                      "after": f"-> {target}\n"})
    if module.check_mode:
        return True
    temp = os.path.join(os.path.dirname(path), f".builder-files-{os.getpid()}-{os.path.basename(path)}")
    if os.path.lexists(temp):
        os.unlink(temp)
    os.symlink(target, temp)
    os.replace(temp, path)
    return True


def _remove(module: AnsibleModule, spec: dict, diffs: list[dict]) -> bool:
    path = spec["path"]
    if not os.path.lexists(path):
        return False
    folder = os.path.isdir(path) and not os.path.islink(path)
    if module._diff:
        diffs.append({"before_header": path, "after_header": path, "before": "(a folder)\n" if folder else
                      "(present)\n", "after": "(absent)\n"})
    if module.check_mode:
        return True
    if folder:
        shutil.rmtree(path)
    else:
        os.unlink(path)
    return True


def _apply(module: AnsibleModule, spec: dict, diffs: list[dict]) -> bool:
    path = spec["path"]
    if spec["absent"]:
        return _remove(module, spec, diffs)
    if spec["absent"] is False and spec["content"] is None and spec["source"] is None and spec["link"] is None:
        module.fail_json(msg=f"{path}: 'absent: false' needs content, source or link")
    if spec["link"] is not None:
        return _link(module, spec, diffs)
    content, mode, uid, gid = _wanted(module, spec)
    parent = os.path.dirname(path)
    made = _parents(module, parent)
    if content is None:  # check mode, the source is made by a step that did not run
        return True
    try:
        current = os.lstat(path)
    except FileNotFoundError:
        current = None
    if current is not None and not spec["force"]:
        return False
    if made and module.check_mode:
        return True
    if current is not None and not stat.S_ISREG(current.st_mode):
        module.fail_json(msg=f"{path}: exists and is not a regular file")
    before = b""
    if current is not None:
        with open(path, "rb") as handle:
            before = handle.read()
    same_content = current is not None and before == content
    same_attrs = current is not None and (stat.S_IMODE(current.st_mode), current.st_uid, current.st_gid) == (
        mode, uid, gid)
    if same_content and same_attrs:
        return False
    if module._diff and not same_content:
        diffs.append({"before_header": path, "after_header": path,
                      "before": before.decode(errors="replace") if spec["source"] is None else "",
                      "after": spec["content"] if spec["source"] is None else f"(the content of {spec['source']})\n"})
    if module.check_mode:
        return True
    if not same_content:
        fd, temp = tempfile.mkstemp(dir=parent, prefix=".builder-files-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.chown(temp, uid, gid)
            os.chmod(temp, mode)
            os.replace(temp, path)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
    else:
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    return True


def main() -> None:
    module = AnsibleModule(
        argument_spec={"files": {"type": "list", "elements": "dict", "required": True, "options": {
            "path": {"type": "path", "required": True},
            "content": {"type": "str"},
            "source": {"type": "path"},
            "link": {"type": "str"},
            "absent": {"type": "bool"},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "str", "default": "0644"},
            "force": {"type": "bool", "default": True},
        }, "required_one_of": [["content", "source", "link", "absent"]],
            "mutually_exclusive": [["content", "source", "link", "absent"]]},
            "parents": {"type": "bool", "default": False}},
        supports_check_mode=True,
    )
    diffs: list[dict] = []
    changed = [spec["path"] for spec in module.params["files"] if _apply(module, spec, diffs)]
    module.exit_json(changed=bool(changed), changed_paths=changed, diff=diffs)


if __name__ == "__main__":
    main()
