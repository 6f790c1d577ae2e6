#!/usr/bin/env bash
# Install the servers and browser the test suite drives, and any tool named as an argument,
# where they are missing (Debian).
set -euo pipefail

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# The README's first steps call the API with curl; a test runs them.
command -v curl >/dev/null 2>&1 || missing+=(curl)
# Extra tools named on the command line (`make bench` asks for wrk, its load generator).
for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done

if ((${#missing[@]})); then
    echo "Installing ${missing[*]} ..."
    if [[ $(id -u) -ne 0 ]]; then
        echo "error: installing ${missing[*]} needs root (apt-get)." >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
    # The postgresql package starts a cluster of its own; the tests start their own.
    if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null; then
        service postgresql stop >/dev/null 2>&1 || true
    fi
fi
