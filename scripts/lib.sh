# Shared setup for scripts/dev and scripts/test: installs what a fresh machine lacks, into the project where
# possible (bin/), from Debian packages otherwise. Sourced, not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/bin"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"
mkdir -p "$BIN"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_go() {
  if ! command -v go >/dev/null 2>&1; then
    if [ -x /usr/local/go/bin/go ]; then export PATH="/usr/local/go/bin:$PATH"; else
      echo "Go 1.26 is required: install it from https://go.dev/dl/ and put it on PATH" >&2; exit 1
    fi
  fi
}

have_pg_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then return 0; fi
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

# PostgreSQL server binaries (kooflow runs its own private cluster; the distribution's service is not used).
need_postgres() {
  [ -n "${DATABASE_URL:-}" ] && return 0
  have_pg_server && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing the PostgreSQL server from Debian packages (no cluster or service is created)"
    mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  else
    echo "PostgreSQL server binaries are missing: run 'sudo apt-get install -y postgresql' (or set DATABASE_URL)" >&2
    exit 1
  fi
}

# The Temporal CLI (dev server + web UI). v1.5.1 is the newest release that builds from the Go module proxy.
need_temporal() {
  [ -n "${TEMPORAL_ADDRESS:-}" ] && return 0
  if [ -n "${KOOFLOW_TEMPORAL_CLI:-}" ]; then # kooflow uses this binary instead of bin/temporal
    [ -x "$KOOFLOW_TEMPORAL_CLI" ] && return 0
    echo "KOOFLOW_TEMPORAL_CLI=$KOOFLOW_TEMPORAL_CLI is not an executable file" >&2; exit 1
  fi
  [ -x "$BIN/temporal" ] && return 0
  say "building the Temporal CLI v1.5.1 into bin/ (once; a few minutes)"
  GOBIN="$BIN" go install -ldflags="-s -w" github.com/temporalio/cli/cmd/temporal@v1.5.1
}

need_checkers() {
  [ -x "$BIN/staticcheck" ] || { say "installing staticcheck"; GOBIN="$BIN" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2; }
  [ -x "$BIN/workflowcheck" ] || { say "installing workflowcheck"; GOBIN="$BIN" go install go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0; }
}
