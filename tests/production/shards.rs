//! A bronze job in four shard processes against SeaweedFS: raw files read
//! from S3, data files and staged records written to the table's S3
//! location, commits through the REST catalog. As an Indexed Job's pods
//! run it.

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};

use crate::backend::Backend;
use crate::ingest::raw_bucket;
use crate::support::{
    Lakehouse, assert_every_event_once, event_files, four_shards_at_once, run_shard,
    sharded_events_spec,
};

async fn lakehouse_with_events_on_s3(backend: &Backend) -> Lakehouse {
    let lakehouse = backend.lakehouse();
    let bucket = raw_bucket(backend);
    for (name, bytes) in event_files() {
        let key = ObjectPath::from(format!("{}/events/{name}", Backend::raw_prefix()));
        bucket.put(&key, PutPayload::from(bytes)).await.unwrap();
    }
    lakehouse
}

#[tokio::test(flavor = "multi_thread")]
async fn four_shard_processes_load_s3_files_in_one_snapshot_through_the_rest_catalog() {
    let backend = Backend::seaweedfs();
    let lakehouse = lakehouse_with_events_on_s3(&backend).await;
    let spec = sharded_events_spec(&lakehouse, "bronze.events", "single");
    let reports = four_shards_at_once(&lakehouse, &spec);
    assert!(
        reports.iter().any(|r| r["status"] == "committed"),
        "{reports:?}"
    );
    assert_every_event_once(&lakehouse, "bronze.events");
    // One snapshot, the job's.
    assert_eq!(lakehouse.history_of("bronze.events", "job_id"), ["load-1"]);
    for shard in ["0/4", "3/4"] {
        let again = run_shard(&lakehouse, &spec, Some(shard));
        assert_eq!(again["status"], "already_committed", "{again}");
    }
    assert_eq!(lakehouse.history_of("bronze.events", "job_id"), ["load-1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn four_shard_processes_committing_per_shard_make_four_snapshots_and_reruns_change_nothing() {
    let backend = Backend::seaweedfs();
    let lakehouse = lakehouse_with_events_on_s3(&backend).await;
    let spec = sharded_events_spec(&lakehouse, "bronze.events", "per-shard");
    for report in four_shards_at_once(&lakehouse, &spec) {
        assert_eq!(report["status"], "committed", "{report}");
    }
    assert_every_event_once(&lakehouse, "bronze.events");
    assert_eq!(
        lakehouse.history_of("bronze.events", "job_id"),
        ["load-1"; 4]
    );
    for shard in ["1/4", "2/4"] {
        let again = run_shard(&lakehouse, &spec, Some(shard));
        assert_eq!(again["status"], "already_committed", "{again}");
    }
    assert_eq!(lakehouse.history("bronze.events").len(), 4);
    assert_every_event_once(&lakehouse, "bronze.events");
}
