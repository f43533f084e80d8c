//! The memory limit of the container (or cgroup) medallion runs in, so the
//! DataFusion memory pool fits inside it: a Job with `memory: 2Gi` then
//! spills to disk before the kernel OOM-kills it.
//!
//! cgroup v2 says `memory.max` (`max` when unlimited); v1 says
//! `memory.limit_in_bytes` (a huge number when unlimited). The process's
//! own cgroup comes from `/proc/self/cgroup`; in a container with its own
//! cgroup namespace that is `/`, the container's root. A limit set on a
//! parent cgroup binds too, so the smallest limit on the way up counts.

use std::path::{Path, PathBuf};

/// What the pool leaves to memory it does not track (Parquet encoders,
/// object-store upload buffers, the allocator, the binary itself): a
/// quarter of the limit, at least 256 MiB, and the pool keeps at least half.
pub fn pool_size(limit: u64) -> u64 {
    let headroom = (limit / 4).max(256 << 20);
    limit.saturating_sub(headroom).max(limit / 2)
}

/// The memory limit of this process's cgroup, if it has one.
pub fn memory_limit() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    memory_limit_under(Path::new("/sys/fs/cgroup"), &own)
}

/// Like [`memory_limit`], with the cgroup filesystem at `root` and the
/// content of `/proc/self/cgroup` given (for tests).
pub fn memory_limit_under(root: &Path, proc_self_cgroup: &str) -> Option<u64> {
    let mut limits = Vec::new();
    for line in proc_self_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            // cgroup v2: one hierarchy at the root.
            limits.extend(walk_up(root, path, "memory.max"));
        } else if controllers.split(',').any(|c| c == "memory") {
            limits.extend(walk_up(&root.join("memory"), path, "memory.limit_in_bytes"));
        }
    }
    limits.into_iter().min()
}

/// Limits in `file` from the cgroup at `path` up to the hierarchy's root.
/// Without a cgroup namespace the path may not exist in the container's
/// view; then only the root's file is read.
fn walk_up(mount: &Path, path: &str, file: &str) -> Vec<u64> {
    let mut dir: PathBuf = mount.join(path.trim_start_matches('/'));
    let mut limits = Vec::new();
    loop {
        if let Some(limit) = std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|text| parse_limit(&text))
        {
            limits.push(limit);
        }
        if dir == mount || !dir.pop() || !dir.starts_with(mount) {
            break;
        }
    }
    limits
}

/// `max`, or v1's "unlimited" (a page-aligned `i64::MAX`), is no limit.
pub fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    let bytes: u64 = text.parse().ok()?;
    (bytes > 0 && bytes < (1 << 62)).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn limits_parse() {
        assert_eq!(parse_limit("2147483648\n"), Some(2 * GIB));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("garbage"), None);
        assert_eq!(parse_limit("0"), None);
    }

    #[test]
    fn the_pool_leaves_headroom() {
        assert_eq!(pool_size(2 * GIB), 1536 * MIB);
        assert_eq!(pool_size(8 * GIB), 6 * GIB);
        assert_eq!(pool_size(512 * MIB), 256 * MIB);
        assert_eq!(pool_size(300 * MIB), 150 * MIB);
    }

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn cgroup_v2_in_a_container() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "memory.max", "2147483648\n");
        assert_eq!(memory_limit_under(root.path(), "0::/\n"), Some(2 * GIB));
        write(root.path(), "memory.max", "max\n");
        assert_eq!(memory_limit_under(root.path(), "0::/\n"), None);
    }

    #[test]
    fn cgroup_v2_nested_takes_the_smallest_limit_up_the_tree() {
        let root = tempfile::tempdir().unwrap();
        write(root.path(), "kubepods.slice/memory.max", "1073741824\n");
        write(root.path(), "kubepods.slice/pod1/ctr/memory.max", "max\n");
        assert_eq!(
            memory_limit_under(root.path(), "0::/kubepods.slice/pod1/ctr\n"),
            Some(GIB)
        );
    }

    #[test]
    fn cgroup_v1_with_and_without_a_namespace() {
        let root = tempfile::tempdir().unwrap();
        let proc_self = "12:pids:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n";
        // Docker on a v1 host mounts the container's own memory cgroup at
        // the root; its path from /proc/self/cgroup does not exist inside.
        write(root.path(), "memory/memory.limit_in_bytes", "536870912\n");
        assert_eq!(memory_limit_under(root.path(), proc_self), Some(512 * MIB));
        // Without a container: the path exists, the root is unlimited.
        write(
            root.path(),
            "memory/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(
            root.path(),
            "memory/docker/abc/memory.limit_in_bytes",
            "268435456\n",
        );
        assert_eq!(memory_limit_under(root.path(), proc_self), Some(256 * MIB));
        assert_eq!(memory_limit_under(root.path(), "4:cpu,cpuacct:/\n"), None);
    }
}
