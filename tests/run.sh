#!/usr/bin/env bash
# Runs every test: installs the Python readers (PyIceberg), starts SeaweedFS
# (a real S3 server and Iceberg REST catalog on 127.0.0.1), runs the test
# suite, and stops SeaweedFS again, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

eval "$(bash .ci/seaweedfs.sh start)"
trap 'bash .ci/seaweedfs.sh stop' EXIT

cargo nextest run --workspace --no-fail-fast "$@"
