//! Test harness: real redis-server / redis-sentinel processes and the real agent binary,
//! on free loopback ports, stopped by PID when dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub mod alertmanager;
pub mod bind;
pub mod certs;
pub mod cloud_dns;
pub mod e2e;
pub mod enterprise;
pub mod etcd;
pub mod fake_redis;
pub mod faulty_http;
pub mod fleet;
pub mod imds;
pub mod moto;
pub mod openai;
pub mod osmem;
pub mod proxy;
pub mod scenario;
pub mod stack;
pub mod workload;

/// Fails the test with an install hint when a program is missing.
pub fn require(program: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "`{program}` is not installed; this test needs it. Install it with \
             `apt-get install -y --no-install-recommends {package}` (scripts/test.sh does this)"
        )
    })
}

/// The port in the agent's "agent started" line, text (`listen=127.0.0.1:P`) or JSON
/// (`"listen":"127.0.0.1:P"`).
fn bound_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains("agent started"))?;
    let at = line.find("127.0.0.1:")? + "127.0.0.1:".len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok().filter(|p| *p != 0)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A loopback port that refuses connections for as long as the returned socket lives: it
/// is bound but not listening, so no other test can take it meanwhile (a port from
/// [`free_port`] can be handed to another test's server a moment later).
pub fn closed_port() -> (socket2::Socket, u16) {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    socket
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("a loopback port");
    let port = socket
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("a bound port");
    (socket, port)
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`.
pub fn wait_for<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status();
}

/// Whether process `pid` has ended: gone, or a zombie. A daemon's parent is PID 1, which
/// on some machines reaps a second or more late; a zombie holds no port and answers
/// nothing, so waiting for the reaping would only delay a fault's next step (and the
/// clock of a scenario that measures from the fault).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold any.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// A redis-server (or redis-sentinel) on 127.0.0.1.
pub struct Redis {
    pub port: u16,
    pub dir: TempDir,
    pid: Option<u32>,
    args: Vec<String>,
    sentinel: bool,
}

impl Redis {
    /// Starts `redis-server` with extra `--name value` arguments.
    pub fn start(extra: &[&str]) -> Redis {
        Self::start_on(free_port(), extra)
    }

    pub fn start_on(port: u16, extra: &[&str]) -> Redis {
        require("redis-server", "redis-server");
        let mut r = Redis {
            port,
            dir: tempfile::tempdir().unwrap(),
            pid: None,
            args: extra.iter().map(|s| s.to_string()).collect(),
            sentinel: false,
        };
        r.launch();
        r
    }

    /// Starts a Sentinel that watches `primary` as `mymaster` with quorum 1.
    pub fn sentinel(primary: &Redis) -> Redis {
        Self::sentinel_of(primary.port, "mymaster", 1, "")
    }

    /// Starts a Sentinel that watches the primary on `port` as `master` with `quorum`,
    /// down after 1 s; `extra` is appended to its configuration.
    pub fn sentinel_of(port: u16, master: &str, quorum: u32, extra: &str) -> Redis {
        require("redis-sentinel", "redis-sentinel");
        let dir = tempfile::tempdir().unwrap();
        let sentinel_port = free_port();
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {sport}\nbind 127.0.0.1\ndir {dir}\n\
                 sentinel monitor {master} 127.0.0.1 {port} {quorum}\n\
                 sentinel down-after-milliseconds {master} 1000\n{extra}",
                sport = sentinel_port,
                dir = dir.path().display(),
            ),
        )
        .unwrap();
        let mut r = Redis {
            port: sentinel_port,
            dir,
            pid: None,
            args: vec![conf.display().to_string()],
            sentinel: true,
        };
        r.launch();
        r
    }

    fn launch(&mut self) {
        let pidfile = self.dir.path().join("redis.pid");
        let _ = std::fs::remove_file(&pidfile);
        let mut cmd = if self.sentinel {
            let mut c = Command::new("redis-sentinel");
            c.arg(&self.args[0]);
            c
        } else {
            let mut c = Command::new("redis-server");
            c.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(self.dir.path())
                .args(&self.args);
            c
        };
        cmd.arg("--daemonize")
            .arg("yes")
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"));
        let status = cmd.status().expect("redis-server runs");
        assert!(status.success(), "redis-server failed to start: {status}");
        let pid = wait_for(Duration::from_secs(10), "the redis pid file", || {
            std::fs::read_to_string(&pidfile)
                .ok()?
                .trim()
                .parse::<u32>()
                .ok()
        });
        self.pid = Some(pid);
        let port = self.port;
        wait_for(
            Duration::from_secs(10),
            "redis to accept connections",
            || TcpStream::connect(("127.0.0.1", port)).ok(),
        );
    }

    pub fn pid(&self) -> u32 {
        self.pid.expect("running")
    }

    /// Sends a signal (`STOP`, `CONT`, ...) to the running server.
    pub fn signal(&self, signal: &str) {
        kill(self.pid(), signal);
    }

    /// Kills the server (SIGKILL) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid, "KILL");
            wait_for(Duration::from_secs(10), "redis to die", || {
                dead(pid).then_some(())
            });
        }
    }

    /// Starts the server again on the same port with the same arguments.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn client(&self) -> redis::Connection {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port)).unwrap();
        client.get_connection().unwrap()
    }

    /// Runs redis-cli against this server; panics on failure.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            kill(pid, "KILL");
        }
    }
}

/// The agent binary, running with a configuration written by the test.
pub struct Agent {
    pub port: u16,
    pub dir: TempDir,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Agent {
    pub fn start(config_yaml: &str) -> Agent {
        Self::start_with_env(config_yaml, &[])
    }

    pub fn start_with_env(config_yaml: &str, env: &[(&str, &str)]) -> Agent {
        Self::start_full(config_yaml, env, &["--verbose"])
    }

    /// Starts the agent on `127.0.0.1:0` and reads the port it bound from its "agent
    /// started" log line: a port chosen beforehand could be taken by another test's
    /// server in between.
    pub fn start_full(config_yaml: &str, env: &[(&str, &str)], args: &[&str]) -> Agent {
        Self::spawn(None, config_yaml, env, args)
    }

    /// As [`Agent::start_full`], listening on `port` (to restart an agent where its
    /// clients expect it).
    pub fn start_on(port: u16, config_yaml: &str, env: &[(&str, &str)], args: &[&str]) -> Agent {
        Self::spawn(Some(port), config_yaml, env, args)
    }

    fn spawn(port: Option<u16>, config_yaml: &str, env: &[(&str, &str)], args: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("agent.yaml");
        // Each agent its own decision journal: two agents must not share one.
        let config_yaml = if config_yaml.contains("state_dir:") {
            config_yaml.to_owned()
        } else {
            format!(
                "{config_yaml}\nstate_dir: {}\n",
                dir.path().join("state").display()
            )
        };
        std::fs::write(&config, config_yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_redis-failover-agent"));
        command.arg("--config").arg(&config);
        // A test may give the listen address by the environment instead (the flag
        // would win over it).
        if !env.iter().any(|(k, _)| *k == "REDIS_FAILOVER_AGENT_LISTEN") {
            command.args(["--listen", &format!("127.0.0.1:{}", port.unwrap_or(0))]);
        }
        let child = command
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the agent binary starts");
        let mut agent = Agent {
            port: port.unwrap_or(0),
            dir,
            config,
            child: Some(child),
        };
        wait_for(Duration::from_secs(20), "the agent to listen", || {
            if let Some(status) = agent
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the agent exited with {status}:\n{}", agent.log());
            }
            if agent.port == 0 {
                agent.port = bound_port(&agent.log())?;
            }
            agent.get("/healthz").ok()
        });
        agent
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// GET `path`; returns (status, body).
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.port, path)
    }

    pub fn metrics(&self) -> Metrics {
        let (status, body) = self.get("/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// Waits until `check` holds on a scrape; returns that scrape.
    pub fn wait_metrics(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Metrics) -> bool,
    ) -> Metrics {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics();
            if check(&m) {
                return m;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {what}\n--- last scrape ---\n{}\n--- agent log ---\n{}",
                    m.text,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        kill(self.pid(), "TERM");
        self.stop_after_signal()
    }

    /// Waits for the agent to exit after a signal the test sent.
    pub fn stop_after_signal(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        wait_for(Duration::from_secs(15), "the agent to exit", || {
            child.try_wait().ok().flatten()
        })
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_request(port, "GET", path, &[], b"")
}

/// One HTTP/1.1 request to 127.0.0.1:`port` (`Connection: close`); returns (status,
/// body), a chunked body put back together.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// One scrape in the classic text format.
pub struct Metrics {
    pub text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = value.parse().unwrap_or(f64::NAN);
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Metrics {
            text: text.to_owned(),
            samples,
        }
    }

    /// The value of the one series named `name` whose labels include `labels`.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.all(name, labels);
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} series",
            found.len()
        );
        found.pop()
    }

    pub fn all(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect()
    }

    /// For an endpoint: `redis_instance` and `datacenter`.
    pub fn of(&self, name: &str, instance: &str, dc: &str) -> Option<f64> {
        self.get(name, &[("redis_instance", instance), ("datacenter", dc)])
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), value);
        rest = &after[end..];
    }
    labels
}

/// `promtool check metrics` must print nothing on our output.
pub fn assert_promtool_clean(text: &str) {
    let promtool = require("promtool", "prometheus");
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
}

/// A config with one instance per (uid, [(datacenter, port)]), interval 1 s and short
/// timeouts, so tests run in seconds.
pub fn config(instances: &[(&str, &[(&str, u16)])], extra: &str) -> String {
    let mut dcs = std::collections::BTreeSet::new();
    let mut y = String::from("instances:\n");
    for (uid, endpoints) in instances {
        y.push_str(&format!(
            "  - uid: {uid}\n    active_dc: {}\n    endpoints:\n",
            endpoints[0].0
        ));
        for (dc, port) in *endpoints {
            dcs.insert(*dc);
            y.push_str(&format!("      {dc}: {{host: 127.0.0.1, port: {port}}}\n"));
        }
    }
    y.push_str("datacenters:\n");
    for dc in dcs {
        y.push_str(&format!("  {dc}: {{name: {dc}}}\n"));
    }
    y.push_str(
        "monitoring_interval: 1\ntimeouts: {connect: 300ms, command: 300ms}\nreconnect_max_backoff: 1s\n",
    );
    y.push_str(extra);
    y
}
