#!/usr/bin/env bash
# Builds the real Packer and its plugins from the Go module proxy and installs them for the project
# (called by .ci/setup; docs/azure.md "The real tools").
#
#   .ci/tools/<tool>/go.mod + go.sum   one module per binary: `tool` directive + the upstream `replace` lines;
#                                      go.sum is tidied and committed, the build runs with -mod=readonly, so
#                                      every module's hash is pinned (nothing new is looked up or accepted)
#   /var/tmp/builder-tools/<key>/bin/  the binaries; <key> = sha256 of the Go version, GOOS/GOARCH, the build
#                                      flags and every .ci/tools/*/go.mod + go.sum: same key, no rebuild
#   .venv/bin/packer                   symlink to the cached packer (Debian's packer 1.6.6 stays /usr/bin/packer)
#   .venv/packer-plugins/              PACKER_PLUGIN_PATH: plugins installed with `packer plugins install --path`
#
# BUILDER_TOOLS_CACHE overrides /var/tmp/builder-tools; BUILDER_TOOLS_REBUILD=1 rebuilds the current key.
set -euo pipefail
cd "$(dirname "$0")/../.."

# tool directory (under .ci/tools) : main package : plugin source for `packer plugins install` (empty: packer)
TOOLS=(
  "packer:github.com/hashicorp/packer:"
  "packer-plugin-ansible:github.com/hashicorp/packer-plugin-ansible:github.com/hashicorp/ansible"
)
# packer-plugin-azure is missing on purpose: no 2.x version of it is served by the Go module proxy
# (its v2 tags sit on a go.mod without the /v2 suffix, so they are no valid module versions; see docs/azure.md).

CACHE_ROOT=${BUILDER_TOOLS_CACHE:-/var/tmp/builder-tools}
PLUGIN_DIR=$PWD/.venv/packer-plugins
BUILD_FLAGS=(-trimpath -ldflags=-s)

if ! command -v go >/dev/null 2>&1; then
  echo "setup: go not found: cannot build packer and its plugins (.ci/tools); install Go >= 1.26.3" >&2
  exit 1
fi
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0

key=$(
  {
    echo "$(go env GOVERSION) $(go env GOOS)/$(go env GOARCH) CGO_ENABLED=0 ${BUILD_FLAGS[*]}"
    for entry in "${TOOLS[@]}"; do
      dir=${entry%%:*}
      cat ".ci/tools/$dir/go.mod" ".ci/tools/$dir/go.sum"
    done
  } | sha256sum | cut -c1-16
)
cache=$CACHE_ROOT/$key

complete() {
  local entry
  for entry in "${TOOLS[@]}"; do
    [ -x "$cache/bin/${entry%%:*}" ] || return 1
  done
  [ -f "$cache/BUILT" ]
}

if [ "${BUILDER_TOOLS_REBUILD:-0}" = 1 ] || ! complete; then
  mkdir -p "$CACHE_ROOT"
  rm -rf "$CACHE_ROOT/.build-$key".*   # an interrupted or failed earlier build (its log was printed)
  work=$(mktemp -d "$CACHE_ROOT/.build-$key.XXXXXX")
  mkdir -p "$work/bin"
  for entry in "${TOOLS[@]}"; do
    IFS=: read -r dir pkg _ <<<"$entry"
    log=$work/$dir.log
    echo "setup: building $dir ($pkg, $(go env GOVERSION); log: $log) ..."
    start=$SECONDS
    (cd ".ci/tools/$dir" && go build "${BUILD_FLAGS[@]}" -o "$work/bin/$dir" "$pkg") >"$log" 2>&1 &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      sleep 5
      if kill -0 "$pid" 2>/dev/null && [ $(((SECONDS - start) % 60)) -lt 5 ]; then
        echo "setup:   still building $dir ($((SECONDS - start))s)"
      fi
    done
    if ! wait "$pid"; then
      echo "setup: building $dir failed:" >&2
      tail -n 40 "$log" >&2
      exit 1
    fi
    echo "setup: built $dir in $((SECONDS - start))s"
  done
  {
    echo "go: $(go env GOVERSION) $(go env GOOS)/$(go env GOARCH)"
    for entry in "${TOOLS[@]}"; do
      IFS=: read -r dir pkg _ <<<"$entry"
      echo "$dir: $(cd ".ci/tools/$dir" && go list -m -f '{{.Path}}@{{.Version}}' "$pkg")"
    done
  } >"$work/BUILT"
  rm -rf "$cache"
  mv "$work" "$cache"
  chmod 755 "$cache"
else
  echo "setup: packer tools cached ($cache)"
fi

# Packer itself: .venv/bin/packer (a symlink; the venv's other tools are left alone).
if [ "$(readlink .venv/bin/packer 2>/dev/null || true)" != "$cache/bin/packer" ]; then
  ln -sfn "$cache/bin/packer" .venv/bin/packer
  echo "setup: installed .venv/bin/packer -> $cache/bin/packer"
fi

# Plugins: into PACKER_PLUGIN_PATH=.venv/packer-plugins, where that packer finds them.
export PACKER_PLUGIN_PATH=$PLUGIN_DIR CHECKPOINT_DISABLE=1
mkdir -p "$PLUGIN_DIR"
for entry in "${TOOLS[@]}"; do
  IFS=: read -r dir _ source <<<"$entry"
  [ -n "$source" ] || continue
  installed=$(find "$PLUGIN_DIR/$source" -maxdepth 1 -type f -name "$dir"'_v*' ! -name '*_SHA256SUM' 2>/dev/null || true)
  if [ -n "$installed" ] && [ "$(printf '%s\n' "$installed" | wc -l)" = 1 ] && cmp -s "$installed" "$cache/bin/$dir"; then
    continue
  fi
  rm -rf "${PLUGIN_DIR:?}/$source"
  echo "setup: installing plugin $source into $PLUGIN_DIR ..."
  .venv/bin/packer plugins install --path "$cache/bin/$dir" "$source"
done
echo "setup: real packer $(.venv/bin/packer version | head -n 1 | cut -d' ' -f2) at .venv/bin/packer," \
  "plugins in PACKER_PLUGIN_PATH=$PLUGIN_DIR"
