#!/usr/bin/env bash
# Checks scripts/install.sh as the container image uses it: installs into a throwaway
# prefix from a copy of the tree holding only what the Dockerfile copies, then runs the
# installed command outside the source tree: migrate and seed a SQLite database, serve it,
# and ask /healthz for the version. Catches a module or data file missing from the package.
set -euo pipefail

source_dir="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir "$work/src"
# the same paths the Dockerfile's build stage copies
(cd "$source_dir" && cp -r pyproject.toml README.md LICENSE api models authz verifier scripts "$work/src/")
if ! "$work/src/scripts/install.sh" "$work/prefix" >"$work/install.log" 2>&1; then
   grep -v "^WARNING: Location" "$work/install.log" >&2  # (a local index's noise)
   echo "check-install: scripts/install.sh failed" >&2
   exit 1
fi

cd "$work"
export DATABASE_URL="sqlite://$work/custos.sqlite3" CUSTOS_MAIL_POLL_SECONDS=0
"$work/prefix/bin/custos" migrate >/dev/null
"$work/prefix/bin/custos" seed-demo >/dev/null
port="$("$work/prefix/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$work/prefix/bin/custos" serve --port "$port" --log-level warning &
server=$!
expected="$("$work/prefix/bin/custos" --version)"  # "custos X.Y.Z"
for _ in $(seq 1 50); do
   if answer="$("$work/prefix/bin/python" -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$port/healthz', timeout=2).read().decode())" 2>/dev/null)"; then
       echo "installed: $expected; /healthz: $answer"
       if [[ "$answer" != *"\"version\":\"${expected#custos }\""* ]]; then
           echo "check-install: /healthz does not report the installed version" >&2
           exit 1
       fi
       exit 0
   fi
   sleep 0.2
done
echo "check-install: the installed server did not answer /healthz" >&2
exit 1
