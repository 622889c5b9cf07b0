#!/usr/bin/env bash
# Copies the CRDs from their one source, crds/ at the repository root, into this chart's crds/ folder.
# Helm installs the chart's crds/ before the templates; a symlink would not survive `helm package`.
# tests/chart checks the copies are byte-identical, so a CRD change without this step fails CI.
set -euo pipefail
chart=$(cd "$(dirname "$0")" && pwd)
source_crds="$chart/../../crds"
# Drop copies whose source is gone, then copy every source CRD (ours and kopf's peering CRDs).
find "$chart/crds" -name '*.yaml' -delete
cp "$source_crds"/*.yaml "$chart/crds/"
