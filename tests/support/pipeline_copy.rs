//! An editable copy of the reference pipeline, for a test that changes a job.

use std::path::{Path, PathBuf};

use super::Lakehouse;

impl Lakehouse {
    /// A copy of the reference pipeline the test may edit.
    pub fn pipeline_copy(&self) -> PathBuf {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs/reference");
        let target = self.path().join("pipeline");
        copy_dir(&source, &target);
        target
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
