"""medallion for Airflow: one task per layer and step, medallion doing the work.

- ``MedallionOperator`` runs one medallion command for one layer of a
  pipeline: ``run`` (in the worker, the local mode), ``submit`` (commit the
  layer's Job manifests to the GitOps repository) or ``watch`` (follow those
  Jobs until they end). medallion's output goes into the task log line by
  line; a ``run``'s report (tables, snapshot ids, rows) is shown as a table
  and returned as the task's XCom. A failure fails the task with medallion's
  one-line error.
- ``ArgoCDSyncOperator`` asks ArgoCD to sync its Application now (REST API),
  and skips when the Application syncs by itself.
- ``medallion_layer`` makes the tasks of one layer, so a DAG names a layer in
  one line.
- ``event_payload`` is the apply function of the Kafka trigger: it turns a
  ``raw-data-ready`` or ``file-uploaded`` message into the asset event's payload.
- ``run_job_id`` derives a DAG run's job id from its ``conf``, the uploads
  that triggered it, or the run id: the same every time the run or one of its
  tasks is cleared and run again, so medallion never loads twice.

Secrets come from Airflow connections and reach medallion as environment
variables of the child process, never as arguments; Airflow's own
environment (``AIRFLOW_*``, which may hold connections) is not passed on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from airflow.sdk import BaseOperator, Connection
from airflow.sdk.exceptions import AirflowException, AirflowNotFoundException, AirflowSkipException
from airflow.sdk.log import mask_secret

log = logging.getLogger(__name__)

LAYERS = ("bronze", "silver", "gold")

# The event contract (README, "Events"): payload version 1 of `file-uploaded`
# and `raw-data-ready`. A message of another version is not guessed at.
SCHEMA_VERSION = 1

# Connection extras that become environment variables of medallion.
ENV_PREFIXES = ("MEDALLION_", "AWS_")
# Of those, the ones whose values are hidden in every Airflow log.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|CREDENTIAL|_KEY", re.IGNORECASE)

JOB_ID_CHARACTER = re.compile(r"[^A-Za-z0-9._:-]+")


# --- events --------------------------------------------------------------


def event_payload(message: Any) -> dict[str, Any] | None:
    """The Kafka trigger's apply function: the payload of a medallion event
    (with its topic), or None for a message that is not one, which the
    trigger then skips."""
    try:
        payload = json.loads(message.value())
    except (TypeError, ValueError):
        log.warning("skipped a message on %s that is not JSON", message.topic())
        return None
    if not isinstance(payload, dict) or payload.get("schema_version") != SCHEMA_VERSION:
        log.warning(
            "skipped a message on %s: schema_version %r, this DAG reads %d",
            message.topic(),
            payload.get("schema_version") if isinstance(payload, dict) else None,
            SCHEMA_VERSION,
        )
        return None
    if not payload.get("upload_id") or not payload.get("dataset"):
        log.warning("skipped a message on %s without upload_id or dataset", message.topic())
        return None
    return {"topic": message.topic(), **payload}


def triggering_events(context: dict[str, Any]) -> list[dict[str, Any]]:
    """The medallion event payloads that triggered this DAG run, oldest first."""
    events = []
    for asset_events in context.get("triggering_asset_events", {}).values():
        for event in asset_events:
            payload = (event.extra or {}).get("payload")
            if isinstance(payload, dict) and payload.get("upload_id"):
                events.append(payload)
    return events


@dataclass(frozen=True)
class RunUploads:
    """What a DAG run loads: the dataset and uploads named by its conf or by
    the events that triggered it (empty for a scheduled or bare manual run)."""

    dataset: str | None
    upload_ids: tuple[str, ...]

    @classmethod
    def of(cls, context: dict[str, Any]) -> RunUploads:
        params = context["params"]
        if params.get("upload_id"):
            return cls(params.get("dataset"), (params["upload_id"],))
        events = triggering_events(context)
        datasets = sorted({event["dataset"] for event in events})
        dataset = params.get("dataset") or (datasets[0] if len(datasets) == 1 else None)
        return cls(dataset, tuple(sorted({event["upload_id"] for event in events})))


def run_job_id(context: dict[str, Any]) -> str:
    """The job id of this DAG run: `conf.job_id`; else from its uploads
    (`<dataset>-<upload id>`; several uploads in one run share a hash of
    their ids); else the run id. A cleared and re-run task gets the same id."""
    params = context["params"]
    if params.get("job_id"):
        return params["job_id"]
    uploads = RunUploads.of(context)
    if len(uploads.upload_ids) == 1:
        base = uploads.upload_ids[0]
    elif uploads.upload_ids:
        base = "uploads-" + hashlib.sha256(",".join(uploads.upload_ids).encode()).hexdigest()[:16]
    else:
        return clean_job_id(context["run_id"])
    return clean_job_id(f"{uploads.dataset}-{base}" if uploads.dataset else base)


def clean_job_id(text: str) -> str:
    """`text` in the characters a job id allows (A-Za-z0-9._:-), at most 100
    long so a layer suffix still fits medallion's 128."""
    return JOB_ID_CHARACTER.sub("-", text).strip("-")[:100]


def layer_job_id(job_id: str, layer: str) -> str:
    """Each layer is a run of its own: `deploy watch` follows exactly its Jobs."""
    return f"{job_id}-{layer}"


# --- the pipeline ----------------------------------------------------------


def layer_jobs(pipeline: str, layer: str) -> list[str]:
    """The names of the pipeline's jobs whose target table is in `layer`
    (`bronze.orders` is bronze), read from its job specs (*.yaml, *.yml)."""
    root = Path(pipeline)
    if not root.is_dir():
        raise AirflowException(f"{pipeline}: no such pipeline folder")
    names = []
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml")):
        spec = yaml.safe_load(path.read_text()) or {}
        table = str((spec.get("target") or {}).get("table", ""))
        if table.split(".", 1)[0] == layer and spec.get("name"):
            names.append(spec["name"])
    if not names:
        raise AirflowException(f"{pipeline} has no {layer} jobs (target table {layer}.*)")
    return names


# --- connections -----------------------------------------------------------


def optional_connection(conn_id: str | None) -> Connection | None:
    if not conn_id:
        return None
    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def medallion_environment(conn_id: str | None) -> dict[str, str]:
    """The environment of a medallion child: the worker's, less Airflow's
    own variables, plus the connection's extras named MEDALLION_* or AWS_*
    (catalog, S3 and git credentials; the GitOps repository). Secret values
    are hidden in the task log should anything print them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    connection = optional_connection(conn_id)
    if connection is None:
        return env
    for name, value in connection.extra_dejson.items():
        if not name.startswith(ENV_PREFIXES):
            continue
        value = str(value)
        if SECRET_NAME.search(name):
            mask_secret(value, name)
        env[name] = value
    return env


@contextmanager
def kubeconfig(conn_id: str | None) -> Iterator[dict[str, str]]:
    """KUBECONFIG for `deploy watch` from a Kubernetes connection of the
    cncf-kubernetes provider: `kube_config` (the file's contents, written to a
    private temporary file for the child's lifetime) or `kube_config_path`.
    Without one, medallion uses the pod's service account or the worker's
    KUBECONFIG."""
    connection = optional_connection(conn_id)
    extra = connection.extra_dejson if connection else {}
    if extra.get("kube_config"):
        contents = extra["kube_config"]
        text = contents if isinstance(contents, str) else json.dumps(contents)
        with tempfile.NamedTemporaryFile("w", prefix="kubeconfig-", suffix=".yaml") as file:
            file.write(text)
            file.flush()
            yield {"KUBECONFIG": file.name}
    elif extra.get("kube_config_path"):
        yield {"KUBECONFIG": extra["kube_config_path"]}
    else:
        yield {}


# --- running medallion -----------------------------------------------------


@dataclass
class Finished:
    stdout: str
    error: str | None
    returncode: int


class MedallionOperator(BaseOperator):
    """One medallion command for one layer of a pipeline.

    :param command: ``run`` (in this worker), ``submit`` (GitOps commit) or
        ``watch`` (follow the submitted Jobs through the Kubernetes API).
    :param layer: bronze, silver or gold: the jobs whose target table is in it.
    :param pipeline: the pipeline folder on the worker (templated).
    :param job_id: the run's job id (templated); default ``run_job_id``. The
        layer's job id is ``<job id>-<layer>``.
    :param conn_id: connection whose extras MEDALLION_* / AWS_* become
        medallion's environment (catalog, S3, git token, GitOps repository).
    :param kubernetes_conn_id: Kubernetes connection for ``watch``.
    """

    template_fields = ("pipeline", "job_id", "input", "image", "namespace", "watch_timeout")
    ui_color = "#f6e3a1"

    def __init__(
        self,
        *,
        command: str,
        layer: str,
        pipeline: str = "{{ params.pipeline }}",
        job_id: str | None = None,
        input: str = "{{ params.input or '' }}",
        image: str = "{{ params.image or '' }}",
        namespace: str = "{{ params.namespace }}",
        watch_timeout: str = "{{ params.watch_timeout }}",
        conn_id: str = "medallion_default",
        kubernetes_conn_id: str = "kubernetes_default",
        binary: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if command not in ("run", "submit", "watch"):
            raise ValueError(f"command must be run, submit or watch, not {command!r}")
        self.command = command
        self.layer = layer
        self.pipeline = pipeline
        self.job_id = job_id
        self.input = input
        self.image = image
        self.namespace = namespace
        self.watch_timeout = watch_timeout
        self.conn_id = conn_id
        self.kubernetes_conn_id = kubernetes_conn_id
        self.binary = binary or os.environ.get("MEDALLION_BIN", "medallion")
        self._child: subprocess.Popen | None = None

    def execute(self, context: Any) -> Any:
        job_id = layer_job_id(self.job_id or run_job_id(context), self.layer)
        env = medallion_environment(self.conn_id)
        if self.command == "watch":
            with kubeconfig(self.kubernetes_conn_id) as kube:
                self.log.info("watching the %s Jobs of job id %s", self.layer, job_id)
                self._check(self._medallion(self._watch_args(job_id), {**env, **kube}))
            return None
        jobs = layer_jobs(self.pipeline, self.layer)
        selection = [arg for name in jobs for arg in ("--job", name)]
        if self.command == "submit":
            self.log.info("submitting %s (%s) as job id %s", self.layer, ", ".join(jobs), job_id)
            args = ["deploy", "submit", self.pipeline, *selection, "--job-id", job_id]
            args += ["--input", self.input] if self.input else []
            args += ["--image", self.image] if self.image else []
            self._check(self._medallion(args, env))
            return None
        self.log.info("running %s (%s) as job id %s", self.layer, ", ".join(jobs), job_id)
        if self.input:
            env["MEDALLION_RAW"] = self.input
        finished = self._medallion(
            ["--json", "run", self.pipeline, *selection, "--job-id", job_id], env, capture=True
        )
        report = json.loads(finished.stdout) if finished.stdout.strip() else None
        if report:
            self.log.info("run report of job id %s:\n%s", job_id, report_table(report))
        self._check(finished)
        return report

    def _watch_args(self, job_id: str) -> list[str]:
        return [
            "deploy",
            "watch",
            job_id,
            "--namespace",
            self.namespace,
            "--timeout",
            self.watch_timeout,
        ]

    def _medallion(self, args: list[str], env: dict[str, str], capture: bool = False) -> Finished:
        """Runs medallion, each line of its stderr (and of its stdout unless
        captured) into the task log as it comes."""
        argv = [self.binary, *args]
        self.log.info("$ %s", " ".join(argv))
        self._child = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
        )
        errors: list[str] = []
        stderr = threading.Thread(target=self._follow, args=(self._child.stderr, errors))
        stderr.start()
        if capture:
            stdout = self._child.stdout.read()
        else:
            self._follow(self._child.stdout, [])
            stdout = ""
        returncode = self._child.wait()
        stderr.join()
        error = next((line for line in reversed(errors) if line.startswith("error: ")), None)
        return Finished(stdout, error, returncode)

    def _follow(self, stream: Any, lines: list[str]) -> None:
        for line in stream:
            line = line.rstrip("\n")
            lines.append(line)
            self.log.info("%s", line)

    def _check(self, finished: Finished) -> None:
        if finished.returncode != 0:
            raise AirflowException(
                finished.error or f"medallion {self.command} exited with {finished.returncode}"
            )

    def on_kill(self) -> None:
        if self._child and self._child.poll() is None:
            self._child.terminate()


def report_table(report: dict[str, Any]) -> str:
    """A run report (`medallion run --json`) as the lines of a table."""
    header = ("table", "status", "snapshot id", "rows written", "rows in table")
    rows = [
        tuple(
            "" if job.get(key) is None else str(job[key])
            for key in ("table", "status", "snapshot_id", "rows_written", "table_rows")
        )
        for job in report.get("jobs", [])
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    return "\n".join(lines)


# --- ArgoCD ----------------------------------------------------------------


class ArgoCDSyncOperator(BaseOperator):
    """Asks ArgoCD to sync an Application now, through its REST API
    (`POST /api/v1/applications/<app>/sync`, what `argocd app sync` sends).
    Skipped when `auto_sync` is true: the Application (deploy/argocd) then
    syncs by itself once the commit is on the branch.

    :param app: the Application (templated).
    :param auto_sync: templated; "True" or "False" from a DAG param.
    :param conn_id: HTTP connection: host = the ArgoCD server URL, password =
        an API token (a project role or account token).
    """

    template_fields = ("app", "auto_sync")

    def __init__(
        self,
        *,
        app: str = "{{ params.argocd_app }}",
        auto_sync: str = "{{ params.argocd_auto_sync }}",
        conn_id: str = "argocd_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.auto_sync = auto_sync
        self.conn_id = conn_id

    def execute(self, context: Any) -> None:
        if str(self.auto_sync).lower() == "true":
            raise AirflowSkipException(f"ArgoCD Application {self.app} syncs by itself (auto-sync)")
        connection = Connection.get(self.conn_id)
        url = f"{connection.host.rstrip('/')}/api/v1/applications/{self.app}/sync"
        request = urllib.request.Request(
            url,
            data=json.dumps({"prune": True}).encode(),
            headers={
                "Authorization": f"Bearer {connection.password}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        self.log.info("POST %s", url)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status = json.load(response).get("status", {})
        except urllib.error.HTTPError as error:
            raise AirflowException(
                f"ArgoCD refused to sync {self.app}: HTTP {error.code}: {error.read().decode()[:500]}"
            ) from None
        self.log.info(
            "ArgoCD syncs %s at revision %s", self.app, status.get("sync", {}).get("revision")
        )


# --- the upload API ----------------------------------------------------------


def upload_status(conn_id: str, upload_id: str) -> dict[str, Any] | None:
    """`GET /api/v1/uploads/<id>` of `medallion serve`, or None when the
    connection is not configured. host = the API's URL, password = a bearer
    token when the API wants one."""
    connection = optional_connection(conn_id)
    if connection is None:
        return None
    request = urllib.request.Request(f"{connection.host.rstrip('/')}/api/v1/uploads/{upload_id}")
    if connection.password:
        request.add_header("Authorization", f"Bearer {connection.password}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise AirflowException(
            f"upload {upload_id}: HTTP {error.code} from the upload API: {error.read().decode()[:500]}"
        ) from None


# --- a layer -------------------------------------------------------------------


@dataclass
class Layer:
    """The tasks of one layer: `run` in local mode; `submit`, `sync` and
    `watch` through GitOps."""

    run: MedallionOperator
    submit: MedallionOperator
    sync: ArgoCDSyncOperator
    watch: MedallionOperator

    def then(self, later: Layer) -> None:
        """`later` starts after this layer, in either mode."""
        self.run >> later.run
        self.watch >> later.submit


def medallion_layer(layer: str, **kwargs: Any) -> Layer:
    """The tasks of `layer` (bronze, silver, gold); `kwargs` go to each
    MedallionOperator (pipeline, conn_id, binary, ...)."""
    submit = MedallionOperator(task_id=f"{layer}_submit", command="submit", layer=layer, **kwargs)
    sync = ArgoCDSyncOperator(task_id=f"{layer}_sync")
    # After the sync, or after the submit alone when the sync skipped
    # (auto-sync); skipped with both, as in local mode.
    watch = MedallionOperator(
        task_id=f"{layer}_watch",
        command="watch",
        layer=layer,
        trigger_rule="none_failed_min_one_success",
        **kwargs,
    )
    submit >> sync >> watch
    submit >> watch
    run = MedallionOperator(task_id=f"{layer}_run", command="run", layer=layer, **kwargs)
    return Layer(run=run, submit=submit, sync=sync, watch=watch)
