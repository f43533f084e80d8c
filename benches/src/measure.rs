//! Runs one command and measures its whole process tree from the outside, the
//! same way for every engine: medallion is one process, a PySpark job is a
//! Python driver plus a JVM child, so only tree-wide numbers compare.
//!
//! - wall time: spawn to exit of the command;
//! - CPU time: user + system of the child and every descendant it waited for
//!   (`wait4`), plus the last seen CPU time of descendants that outlive it;
//! - peak memory: the largest sum of resident set sizes over the tree, polled
//!   from /proc every `POLL`;
//! - bytes read and written: `rchar`/`wchar` of /proc/<pid>/io, read while the
//!   child is a zombie (then it includes every descendant it reaped), plus the
//!   last seen values of descendants that outlive it.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// How often the process tree is sampled. Peaks shorter than this can be
/// missed; 20 ms keeps the harness's own CPU use negligible on 2 cores.
const POLL: Duration = Duration::from_millis(20);

/// How long descendants that outlive the command (a JVM whose driver exited)
/// may go on before they are killed so they cannot disturb the next run.
const LINGER: Duration = Duration::from_secs(30);

/// What one process tree used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub wall_seconds: f64,
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    /// Bytes through read-like system calls (page cache included).
    pub read_bytes: u64,
    /// Bytes through write-like system calls.
    pub written_bytes: u64,
}

impl Usage {
    /// The usage of steps run one after another: times and bytes add up,
    /// memory is the largest of the steps.
    pub fn sequence(steps: &[Usage]) -> Usage {
        steps.iter().fold(Usage::default(), |total, step| Usage {
            wall_seconds: total.wall_seconds + step.wall_seconds,
            cpu_seconds: total.cpu_seconds + step.cpu_seconds,
            peak_rss_bytes: total.peak_rss_bytes.max(step.peak_rss_bytes),
            read_bytes: total.read_bytes + step.read_bytes,
            written_bytes: total.written_bytes + step.written_bytes,
        })
    }
}

/// Runs `command` with stdout and stderr sent to `log_prefix.out` and
/// `log_prefix.err`, and measures it. A non-zero exit is an error that
/// quotes the end of stderr.
pub fn run_measured(command: &mut Command, log_prefix: &Path) -> Result<Usage> {
    let out_path = log_prefix.with_extension("out");
    let err_path = log_prefix.with_extension("err");
    let stdout =
        File::create(&out_path).with_context(|| format!("cannot create {}", out_path.display()))?;
    let stderr =
        File::create(&err_path).with_context(|| format!("cannot create {}", err_path.display()))?;
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let pid = child.id() as i32;
    // The child is reaped with wait4 below (for its rusage), not through `Child`.
    drop(child);

    let mut tree = Tree::new(pid);
    let mut peak_rss = 0u64;
    while !has_exited(pid)? {
        peak_rss = peak_rss.max(tree.sample());
        std::thread::sleep(POLL);
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    // A zombie's counters include every descendant it reaped.
    let root_io = read_io(pid).unwrap_or_default();
    let (status, rusage) = reap(pid)?;
    let mut cpu_seconds = timeval_seconds(rusage.ru_utime) + timeval_seconds(rusage.ru_stime);
    let mut io = root_io;

    let survivors = tree.outliving(pid);
    let linger_started = Instant::now();
    let mut alive: Vec<i32> = survivors.clone();
    while !alive.is_empty() && linger_started.elapsed() < LINGER {
        peak_rss = peak_rss.max(alive.iter().map(|&p| rss_bytes(p).unwrap_or(0)).sum());
        tree.refresh_counters(&alive);
        std::thread::sleep(POLL);
        alive.retain(|&p| Path::new(&format!("/proc/{p}")).exists());
    }
    for &p in &alive {
        // Only processes this run started, by id: they must not disturb the next run.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    for p in survivors {
        let counters = tree.last_seen(p);
        cpu_seconds += counters.cpu_seconds;
        io.read += counters.io.read;
        io.written += counters.io.written;
    }

    if status != 0 {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        let tail: Vec<&str> = stderr.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!(
            "{command:?} failed ({}); its output is in {} and {}:\n{}",
            describe_status(status),
            out_path.display(),
            err_path.display(),
            tail.join("\n")
        );
    }
    Ok(Usage {
        wall_seconds,
        cpu_seconds,
        peak_rss_bytes: peak_rss,
        read_bytes: io.read,
        written_bytes: io.written,
    })
}

#[derive(Debug, Clone, Copy, Default)]
struct Io {
    read: u64,
    written: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Counters {
    cpu_seconds: f64,
    io: Io,
}

/// The processes descending from one root, as last seen.
struct Tree {
    root: i32,
    known: HashSet<i32>,
    last_seen: HashMap<i32, Counters>,
}

impl Tree {
    fn new(root: i32) -> Self {
        Self {
            root,
            known: HashSet::from([root]),
            last_seen: HashMap::new(),
        }
    }

    /// Finds the current descendants, records their counters and returns the
    /// sum of their resident set sizes.
    fn sample(&mut self) -> u64 {
        let parents = parent_map();
        let mut members = vec![self.root];
        let mut index = 0;
        while index < members.len() {
            let parent = members[index];
            for (&pid, &ppid) in &parents {
                if ppid == parent && !members.contains(&pid) {
                    members.push(pid);
                }
            }
            index += 1;
        }
        self.known.extend(members.iter().copied());
        self.refresh_counters(&members);
        members.iter().map(|&p| rss_bytes(p).unwrap_or(0)).sum()
    }

    fn refresh_counters(&mut self, pids: &[i32]) {
        for &pid in pids {
            if let (Some(cpu_seconds), Some(io)) = (cpu_seconds(pid), read_io(pid)) {
                self.last_seen.insert(pid, Counters { cpu_seconds, io });
            }
        }
    }

    /// Descendants still running after the root exited (re-parented away),
    /// whose counters the root's do not include.
    fn outliving(&self, root: i32) -> Vec<i32> {
        self.known
            .iter()
            .copied()
            .filter(|&p| p != root && Path::new(&format!("/proc/{p}")).exists())
            .collect()
    }

    fn last_seen(&self, pid: i32) -> Counters {
        self.last_seen.get(&pid).copied().unwrap_or_default()
    }
}

/// pid -> parent pid of every process on the machine.
fn parent_map() -> HashMap<i32, i32> {
    let mut parents = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return parents;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(fields) = stat_fields(pid)
            && let Some(ppid) = fields.get(1).and_then(|f| f.parse().ok())
        {
            parents.insert(pid, ppid);
        }
    }
    parents
}

/// Fields of /proc/<pid>/stat after the command name (which may contain
/// spaces and parentheses): index 0 is the state, 1 the parent pid.
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(str::to_string).collect())
}

fn cpu_seconds(pid: i32) -> Option<f64> {
    let fields = stat_fields(pid)?;
    // utime and stime are fields 14 and 15 of stat, 11 and 12 after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / per_second.max(1) as f64)
}

fn rss_bytes(pid: i32) -> Option<u64> {
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * page_size.max(1) as u64)
}

fn read_io(pid: i32) -> Option<Io> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let mut io = Io::default();
    for line in text.lines() {
        let (key, value) = line.split_once(':')?;
        let value: u64 = value.trim().parse().ok()?;
        match key {
            "rchar" => io.read = value,
            "wchar" => io.written = value,
            _ => {}
        }
    }
    Some(io)
}

/// Whether the child has exited, leaving it a zombie so its counters can
/// still be read.
fn has_exited(pid: i32) -> Result<bool> {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let result = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if result != 0 {
        return Err(std::io::Error::last_os_error()).context("waitid on the measured child");
    }
    Ok(unsafe { info.si_pid() } != 0)
}

fn reap(pid: i32) -> Result<(i32, libc::rusage)> {
    let mut status = 0;
    let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
    let result = unsafe { libc::wait4(pid, &mut status, 0, &mut rusage) };
    if result != pid {
        return Err(std::io::Error::last_os_error()).context("wait4 on the measured child");
    }
    Ok((status, rusage))
}

fn timeval_seconds(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

fn describe_status(status: i32) -> String {
    if libc::WIFEXITED(status) {
        format!("exit code {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("wait status {status}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_child_and_its_grandchildren() {
        let dir = tempfile::tempdir().unwrap();
        // The shell allocates nothing much; its child `head` writes 3 MB to a file.
        let mut command = Command::new("sh");
        command.arg("-c").arg(format!(
            "head -c 3000000 /dev/zero > {}/x && sleep 0.1",
            dir.path().display()
        ));
        let usage = run_measured(&mut command, &dir.path().join("log")).unwrap();
        assert!(usage.wall_seconds >= 0.1, "{usage:?}");
        assert!(usage.written_bytes >= 3_000_000, "{usage:?}");
        assert!(usage.read_bytes >= 3_000_000, "{usage:?}");
        assert!(usage.peak_rss_bytes > 0, "{usage:?}");
    }

    #[test]
    fn a_failing_command_is_an_error_quoting_its_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let mut command = Command::new("sh");
        command.arg("-c").arg("echo 'no such table' >&2; exit 3");
        let error = run_measured(&mut command, &dir.path().join("log"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("exit code 3"), "{error}");
        assert!(error.contains("no such table"), "{error}");
    }

    #[test]
    fn steps_in_sequence_add_times_and_keep_the_largest_memory() {
        let a = Usage {
            wall_seconds: 1.0,
            cpu_seconds: 1.5,
            peak_rss_bytes: 100,
            read_bytes: 10,
            written_bytes: 20,
        };
        let b = Usage {
            wall_seconds: 2.0,
            cpu_seconds: 0.5,
            peak_rss_bytes: 300,
            read_bytes: 1,
            written_bytes: 2,
        };
        let total = Usage::sequence(&[a, b]);
        assert_eq!(total.wall_seconds, 3.0);
        assert_eq!(total.cpu_seconds, 2.0);
        assert_eq!(total.peak_rss_bytes, 300);
        assert_eq!(total.read_bytes, 11);
        assert_eq!(total.written_bytes, 22);
    }
}
