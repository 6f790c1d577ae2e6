#!/usr/bin/env bash
# Print the path of a Python >= 3.12 matching .python-version, or explain what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f .python-version ]]; then
    echo "error: .python-version is missing; it names the Python (3.12 or newer) coordhub runs on." >&2
    exit 1
fi
wanted="$(tr -d '[:space:]' < .python-version)"

candidates=()
if command -v pyenv >/dev/null 2>&1; then
    if prefix="$(pyenv prefix "$wanted" 2>/dev/null)"; then
        candidates+=("$prefix/bin/python")
    fi
fi
candidates+=("python$wanted" python3.13 python3.12 python3)

for candidate in "${candidates[@]}"; do
    if path="$(command -v "$candidate" 2>/dev/null)" &&
        "$path" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
        echo "$path"
        exit 0
    fi
done

echo "error: no Python 3.12 or newer found (wanted $wanted from .python-version)." >&2
echo "Install one, e.g. 'pyenv install $wanted' or Debian's python3.12/python3.13 package." >&2
exit 1
