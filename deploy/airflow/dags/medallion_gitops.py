"""data_ingestion_gitops: raw data to bronze, silver and gold with medallion.

Triggered by medallion's Kafka events (an AssetWatcher on `raw-data-ready`,
optionally `file-uploaded`), on a schedule when MEDALLION_DAG_CRON is set,
or by hand with a conf such as {"dataset": "orders", "upload_id": "...",
"job_id": "..."}. Each layer runs in one of two modes (the `mode` param):

- gitops: `medallion deploy submit` commits the layer's Jobs to the GitOps
  repository, ArgoCD syncs (skipped with auto-sync), `medallion deploy
  watch` follows the Jobs until they end;
- local: `medallion run` in the Airflow worker, for teams without Kubernetes.

See deploy/airflow/README.md for the connections and what each task does.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.sdk import (
    Asset,
    AssetOrTimeSchedule,
    AssetWatcher,
    CronTriggerTimetable,
    Param,
    PokeReturnValue,
    dag,
    task,
)
from airflow.sdk.exceptions import AirflowException, AirflowSkipException
from medallion_airflow import (
    LAYERS,
    RunUploads,
    medallion_layer,
    run_job_id,
    upload_status,
)

# Read when the DAG file is parsed.
TOPICS = os.environ.get("MEDALLION_DAG_TOPICS", "raw-data-ready").split(",")
KAFKA_CONN_ID = os.environ.get("MEDALLION_KAFKA_CONN_ID", "kafka_default")
CRON = os.environ.get("MEDALLION_DAG_CRON")
UPLOAD_API_CONN_ID = "medallion_upload_api"

medallion_events = Asset(
    "medallion_raw_data",
    watchers=[
        AssetWatcher(
            name="medallion_events",
            trigger=MessageQueueTrigger(
                scheme="kafka",
                topics=TOPICS,
                kafka_config_id=KAFKA_CONN_ID,
                apply_function="medallion_airflow.event_payload",
                poll_interval=1,
            ),
        )
    ],
)


@dag(
    dag_id="data_ingestion_gitops",
    schedule=(
        AssetOrTimeSchedule(
            timetable=CronTriggerTimetable(CRON, timezone="UTC"), assets=medallion_events
        )
        if CRON
        else medallion_events
    ),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["medallion"],
    params={
        "mode": Param(
            "gitops",
            enum=["gitops", "local"],
            description="Kubernetes Jobs through GitOps, or medallion run in the worker",
        ),
        "pipeline": Param(
            os.environ.get("MEDALLION_PIPELINE", "/pipelines/reference"),
            type="string",
            description="the pipeline folder on the worker",
        ),
        "dataset": Param(None, type=["null", "string"]),
        "upload_id": Param(None, type=["null", "string"]),
        "job_id": Param(
            None,
            type=["null", "string"],
            description="default: from the uploads, else the run id",
        ),
        "input": Param(
            None,
            type=["null", "string"],
            description="raw-input root of the run, e.g. s3://raw/2026-11-29",
        ),
        "image": Param(
            None,
            type=["null", "string"],
            description="gitops: the Jobs' image instead of the template's",
        ),
        "namespace": Param("medallion-jobs", type="string"),
        "argocd_app": Param("medallion-jobs", type="string"),
        "argocd_auto_sync": Param(
            True,
            type="boolean",
            description="skip the sync tasks: the Application syncs by itself",
        ),
        "watch_timeout": Param("6h", type="string"),
    },
    doc_md=__doc__,
)
def data_ingestion_gitops():
    @task.sensor(poke_interval=10, timeout=3600, mode="reschedule")
    def check_upload(**context) -> PokeReturnValue:
        """Waits until `medallion serve` has ingested the run's uploads
        (GET /api/v1/uploads/<id>); skipped without the medallion_upload_api
        connection or without uploads."""
        uploads = RunUploads.of(context)
        if not uploads.upload_ids:
            raise AirflowSkipException("no upload to check: a scheduled or manual run")
        statuses = {}
        for upload_id in uploads.upload_ids:
            status = upload_status(UPLOAD_API_CONN_ID, upload_id)
            if status is None:
                raise AirflowSkipException(f"no {UPLOAD_API_CONN_ID} connection: uploads not checked")
            if status.get("status") == "failed":
                raise AirflowException(f"upload {upload_id} failed: {status.get('reason')}")
            statuses[upload_id] = status
        ingested = all(s.get("status") == "ingested" for s in statuses.values())
        return PokeReturnValue(is_done=ingested, xcom_value=statuses)

    @task.branch(trigger_rule="none_failed")
    def choose_mode(**context) -> str:
        """Logs the run's job id and takes the chosen mode's first task."""
        mode = context["params"]["mode"]
        print(f"job id {run_job_id(context)}, mode {mode}")
        return f"{LAYERS[0]}_run" if mode == "local" else f"{LAYERS[0]}_submit"

    layers = [medallion_layer(layer) for layer in LAYERS]
    check_upload() >> choose_mode() >> [layers[0].run, layers[0].submit]
    for earlier, later in zip(layers, layers[1:]):
        earlier.then(later)


data_ingestion_gitops()
