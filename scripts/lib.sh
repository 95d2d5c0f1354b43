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

# Chromium and chromedriver from Debian packages, for the browser tests (the web console and unified login).
# The tests find the browser through KOOFLOW_CHROMIUM (exported here) and skip when it is unset and absent.
need_chromium() {
  if [ -z "${KOOFLOW_CHROMIUM:-}" ]; then
    for c in chromium chromium-browser google-chrome; do
      if command -v "$c" >/dev/null 2>&1; then KOOFLOW_CHROMIUM="$(command -v "$c")"; break; fi
    done
  fi
  if [ -z "${KOOFLOW_CHROMIUM:-}" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing Chromium from Debian packages (browser tests)"
      DEBIAN_FRONTEND=noninteractive apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-wqy-zenhei >/dev/null
      KOOFLOW_CHROMIUM="$(command -v chromium)"
    else
      echo "Chromium is missing: run 'sudo apt-get install -y chromium' (or set KOOFLOW_CHROMIUM)" >&2; exit 1
    fi
  fi
  export KOOFLOW_CHROMIUM
}

need_checkers() {
  [ -x "$BIN/staticcheck" ] || { say "installing staticcheck"; GOBIN="$BIN" go install honnef.co/go/tools/cmd/staticcheck@v0.8.2; }
  [ -x "$BIN/workflowcheck" ] || { say "installing workflowcheck"; GOBIN="$BIN" go install go.temporal.io/sdk/contrib/tools/workflowcheck@v0.6.0; }
}

# govulncheck and the Go vulnerability database it reads. vuln.go.dev may be unreachable (as on a machine that
# reaches only the Go module proxy), so the database is built locally from the golang.org/x/vulndb module, which
# the proxy serves: its data/osv entries, indexed by the vulndb project's own indexdb command. Set
# KOOFLOW_VULNDB_VERSION to a newer pseudo-version of golang.org/x/vulndb to refresh the advisories.
VULNDB_VERSION="${KOOFLOW_VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}"
need_vulncheck() {
  [ -x "$BIN/govulncheck" ] || { say "installing govulncheck"; GOBIN="$BIN" go install golang.org/x/vuln/cmd/govulncheck@v1.9.0; }
  VULNDB="$BIN/vulndb-$VULNDB_VERSION"
  [ -f "$VULNDB/index/db.json" ] && return 0
  say "building the Go vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION (once)"
  if [ ! -x "$BIN/indexdb-$VULNDB_VERSION" ]; then
    GOBIN="$BIN/indexdb.tmp" GOFLAGS=-mod=mod go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"
    mv "$BIN/indexdb.tmp/indexdb" "$BIN/indexdb-$VULNDB_VERSION"
    rmdir "$BIN/indexdb.tmp"
  fi
  local src
  src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rm -rf "$VULNDB.tmp" && "$BIN/indexdb-$VULNDB_VERSION" -vulns "$src/data/osv" -out "$VULNDB.tmp" && mv "$VULNDB.tmp" "$VULNDB"
}

# vulncheck fails on a known vulnerability that the code reaches in a module go.mod can upgrade. Advisories fixed
# only in a newer Go release than this machine's toolchain are listed but do not fail the check: they are fixed
# by installing that Go release, not by a change here.
vulncheck() {
  local out rc=0
  out=$("$BIN/govulncheck" -db "file://$VULNDB" ./... 2>&1) || rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then echo "$out"; return "$rc"; fi
  local modules std
  modules=$(printf '%s\n' "$out" | grep -E '^[[:space:]]+Found in: ' | grep -v '@go[0-9]' || true)
  std=$(printf '%s\n' "$out" | grep -E '^[[:space:]]+Found in: .*@go[0-9]' | sort -u || true)
  if [ -n "$modules" ]; then echo "$out"; echo "govulncheck: the code reaches vulnerable module versions; upgrade them in go.mod" >&2; return 1; fi
  if [ -n "$std" ]; then
    echo "govulncheck: $(printf '%s\n' "$std" | wc -l) standard-library packages of $(go env GOVERSION) have advisories fixed in a newer Go release:" >&2
    printf '%s\n' "$std" >&2
  fi
  echo "govulncheck: no vulnerable module the code reaches"
}
