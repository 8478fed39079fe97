#!/bin/sh
# Runs on the Azure build VM from the uploaded verification bundle: `builder verify` with the static suite
# (and the hardware suite when the build VM is a target SKU), JUnit written to <bundle>/junit.xml.
# Usage: verify-on-vm.sh IMAGE VERSION SUITE. Needs Python >= 3.11; installs it from the OS archive if missing.
set -eu
DIR=$(cd "$(dirname "$0")" && pwd)
IMAGE=$1
VERSION=$2
SUITE=$3

py=""
for candidate in python3.13 python3.12 python3.11 python3; do
  if command -v "$candidate" >/dev/null 2>&1 &&
    "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$candidate
    break
  fi
done
if [ -z "$py" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends python3.11 python3.11-venv
  py=python3.11
fi

"$py" -m venv "$DIR/venv"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check -r "$DIR/requirements.txt"
"$DIR/venv/bin/pip" install -q --disable-pip-version-check --no-deps "$DIR/src"
exec "$DIR/venv/bin/builder" --catalog "$DIR/images" --state-dir "$DIR/state" verify "$IMAGE" \
  --connection local --suite "$SUITE" --select pre-generalize --expect-version "$VERSION" \
  --role-settings "$DIR/role-settings.json" --junit "$DIR/junit.xml"
