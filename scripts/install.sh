#!/usr/bin/env bash
# Installs Custos from this source tree into a virtual environment at PREFIX (default
# /opt/custos): the package and its dependencies, not in editable mode, nothing else.
# The container image runs this script (Dockerfile) and CI runs it too (.ci/run, through
# scripts/check-install.sh), so what ships is what CI checked.
#
#   scripts/install.sh [PREFIX]      then PREFIX/bin/custos is the command
set -euo pipefail

prefix="${1:-/opt/custos}"
source_dir="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"

"$python" -m venv "$prefix"
"$prefix/bin/pip" install --quiet --no-cache-dir --upgrade pip
"$prefix/bin/pip" install --quiet --no-cache-dir "$source_dir"
"$prefix/bin/custos" --version
