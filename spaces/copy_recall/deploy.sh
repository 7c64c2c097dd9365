#!/usr/bin/env bash
# Deploy the demo to a Hugging Face Space:
#   hf auth login                                        # once, with a token that can write to the Space
#   spaces/copy_recall/deploy.sh <user>/<space-name>      # creates the Space if needed, then uploads
#   spaces/copy_recall/deploy.sh --stage-only <dir>       # only write the Space's files into <dir>
# hf_mimetic is not on PyPI, so its package is copied next to app.py: a Space runs app.py from its own folder,
# which puts that folder first on sys.path. requirements.txt pins the rest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

stage() {  # stage <dir>: the Space's files, as they will be in its repository
    mkdir -p "$1"
    cp "$here/app.py" "$here/side_by_side.py" "$here/requirements.txt" "$here/README.md" "$1/"
    rm -rf "$1/hf_mimetic"
    cp -r "$root/hf_mimetic" "$1/hf_mimetic"
    find "$1" -name __pycache__ -prune -exec rm -rf {} +
}

if [[ "${1:-}" == "--stage-only" ]]; then
    stage "${2:?usage: deploy.sh --stage-only <dir>}"
    exit 0
fi
space_id=${1:?usage: deploy.sh <user>/<space-name> | --stage-only <dir>}
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
stage "$staging"
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo "unknown revision")
hf repos create "$space_id" --repo-type space --space-sdk gradio --exist-ok
hf upload "$space_id" "$staging" . --repo-type space --commit-message "Deploy copy_recall (hf_mimetic $revision)"
