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

# The benchmark harness at a tiny scale, so it cannot rot: medallion and
# DuckDB run the reference pipeline and must compute the same tables
# (medallion-bench exits non-zero otherwise). Spark stays out of CI: its
# install is ~300 MiB and a run takes minutes (see README, Benchmarks).
cargo build --quiet -p medallion-engine -p medallion-bench --bins
bench_dir="$(mktemp -d)"
if ! cargo run --quiet -p medallion-bench -- --scale 0.01 --engines medallion,duckdb --runs 1 \
  --out "$bench_dir/report" --work-dir "$bench_dir/work" > "$bench_dir/bench.log" 2>&1; then
  cat "$bench_dir/bench.log"
  echo "benchmark smoke run failed: medallion and DuckDB differ, or an engine failed (above)"
  exit 1
fi
echo "benchmark smoke run: medallion and DuckDB computed the same tables at scale 0.01"
rm -rf "$bench_dir"
