#!/usr/bin/env bash
# Build the context-redact-py plugin into a Warden component:
#
#   guests/context-redact-py/build.sh <out.wasm>
#
# Uses componentize-py from the virtualenv ${WARDEN_PY_VENV:-target/py}
# (relative to the repository root), creating it with the pinned version if
# it does not exist. The component targets the `context-builder` world of
# wit/; then `warden plugin pack` (the `warden` on PATH, or $WARDEN) embeds
# warden.toml as its `warden-manifest` section.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 <out.wasm>" >&2
    exit 2
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
COMPONENTIZE_PY_VERSION="$(cat "$repo/host/templates/python/componentize-py.version")"
out="$1"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
venv="${WARDEN_PY_VENV:-target/py}"
case "$venv" in /*) ;; *) venv="$repo/$venv" ;; esac

if [ ! -x "$venv/bin/componentize-py" ]; then
    echo "build.sh: installing componentize-py $COMPONENTIZE_PY_VERSION into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "componentize-py==$COMPONENTIZE_PY_VERSION"
fi
have="$("$venv/bin/componentize-py" --version | awk '{print $2}')"
if [ "$have" != "$COMPONENTIZE_PY_VERSION" ]; then
    echo "build.sh: $venv has componentize-py $have; this plugin is built with $COMPONENTIZE_PY_VERSION" >&2
    echo "  fix: $venv/bin/pip install componentize-py==$COMPONENTIZE_PY_VERSION" >&2
    exit 1
fi

# Build from a copy of the sources, so the build's interpreter writes no
# __pycache__ into the repository and nothing but the plugin's modules is on
# its path.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cp "$here/app.py" "$here/redact.py" "$work/src/"

(
    cd "$work"
    env -u VIRTUAL_ENV "$venv/bin/componentize-py" --quiet \
        -d "$repo/wit" -w context-builder \
        componentize app -p "$work/src" -o "$work/raw.wasm"
)
mkdir -p "$(dirname "$out")"
"${WARDEN:-warden}" plugin pack "$work/raw.wasm" "$out" --manifest "$here/warden.toml" >/dev/null
echo "built $out ($(wc -c <"$out") bytes)" >&2
