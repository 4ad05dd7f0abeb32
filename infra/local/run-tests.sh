#!/usr/bin/env bash
# Every test of the workspace on the local stack (started by the caller), then the AWS
# operations the functions made during them checked against their roles in the template
# (infra/iam/calls.py). Ends with the test runner's summary, printed again after the check.
set -uo pipefail
cd "$(dirname "$0")/../.."
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo nextest run --workspace --no-fail-fast 2>&1 | tee "$log"
tests=${PIPESTATUS[0]}
echo
.venv/bin/python infra/iam/calls.py --quiet .local/stack/cargo-lambda.log
calls=$?
echo
sed -n '/^ *Summary \[/,$p' "$log"
if [ "$tests" -ne 0 ]; then exit "$tests"; fi
exit "$calls"
