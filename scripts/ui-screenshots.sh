#!/usr/bin/env bash
# Writes the screenshots docs/ui.md shows (docs/img/ui-*.png): the UI tests in headless Chromium take them
# as they go (tests/ui, PODNET_UI_SHOTS). Run after `make setup`, as root (one test runs a lab).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/img
PODNET_UI_SHOTS=docs/img .venv/bin/pytest -q -p no:cacheprovider tests/ui/test_editor.py tests/ui/test_admin_editor.py tests/ui/test_flows.py \
    tests/ui/test_lab_ui.py tests/ui/test_lab_live.py
ls docs/img/ui-*.png
