#!/usr/bin/env bash
# Install what the tests need, then run the gates: ruff, mypy, pytest.
# Every gate runs even when an earlier one fails, so one CI run shows all problems;
# the script fails if any gate failed. Arguments are passed to pytest; without a
# test path among them the whole tests/ tree runs:
#   ./test.sh -x                  # everything, stop at the first failure
#   ./test.sh tests/unit -k store # only matching unit tests
# pytest exit code 5 (no tests collected) counts as a failure: a typo in a path
# or -k expression must not look like a green run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

PAAS_SKIP_BOOTSTRAP=1 ./install.sh

# Tools only the tests use (HTTPS load, HTTP/2, TLS probes, Let's Encrypt's test ACME
# server): package=command, one a line; installed when a command is missing.
TEST_TOOLS=(
  wrk=wrk
  nghttp2-client=nghttp
  openssl=openssl
  curl=curl
  pebble=pebble
  pebble=pebble-challtestsrv
)
missing_tools=()
for pair in "${TEST_TOOLS[@]}"; do
  command -v "${pair#*=}" >/dev/null 2>&1 || missing_tools+=("${pair%%=*}")
done
if ((${#missing_tools[@]})); then
  printf -- '-----> Installing test tools: %s\n' "${missing_tools[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing_tools[@]}" >/dev/null
fi

failed=()

gate() {
  local name=$1 started=${EPOCHREALTIME//[.,]/} rc=0
  shift
  printf -- '-----> %s\n' "$name"
  "$@" || rc=$?
  if [[ $name == pytest && $rc -eq 5 ]]; then
    printf ' !     pytest collected no tests\n' >&2
  fi
  local us=$((${EPOCHREALTIME//[.,]/} - started))
  if ((rc == 0)); then
    printf '       passed in %d.%01ds\n' $((us / 1000000)) $((us % 1000000 / 100000))
  else
    printf ' !     %s failed (exit %d)\n' "$name" "$rc" >&2
    failed+=("$name")
  fi
}

# Run the whole tree unless the arguments name tests (a path or path::test).
targets=(tests)
for arg in "$@"; do
  if [[ -e ${arg%%::*} ]]; then
    targets=()
    break
  fi
done

gate ruff .venv/bin/ruff check paas tests
gate mypy .venv/bin/mypy paas
gate pytest .venv/bin/python -m pytest -q "${targets[@]}" "$@"

if ((${#failed[@]})); then
  printf ' !     test.sh: failed steps: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf -- '-----> all gates passed\n'
