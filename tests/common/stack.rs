//! The monitoring stack as shipped: real Prometheus and Alertmanager started with the
//! repository's own `prometheus/` and `alertmanager/` files, and a receiver that records
//! what Alertmanager delivers.
//!
//! The shipped files are never edited. Each is loaded and written to a temporary
//! overlay that changes only what cannot work on loopback: addresses (compose host names
//! become 127.0.0.1 ports), secret file paths (`/run/secrets/...` become temporary files)
//! and, for Prometheus, the scrape and evaluation intervals.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use tempfile::TempDir;

use super::{free_port, http_get, require, wait_for};

/// Where the repository's files are.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn load_yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn map<'a>(value: &'a mut Yaml, key: &str) -> Option<&'a mut Yaml> {
    value.as_mapping_mut()?.get_mut(key)
}

/// Percent-encodes a query parameter.
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A child process stopped (SIGKILL) when dropped, with its output in `dir/NAME.log`.
struct Server {
    name: &'static str,
    dir: TempDir,
    child: Option<Child>,
}

impl Server {
    fn spawn(name: &'static str, dir: TempDir, cmd: &mut Command) -> Server {
        let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
        Server {
            name,
            dir,
            child: Some(child),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.name)))
            .unwrap_or_default()
    }

    /// Waits until `port` answers `path` with 200, failing early if the process exits.
    fn wait_ready(&mut self, port: u16, path: &str) {
        let name = self.name;
        wait_for(
            Duration::from_secs(60),
            &format!("{name} to be ready"),
            || {
                if let Some(status) = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    panic!("{name} exited with {status}:\n{}", self.log());
                }
                matches!(http_get(port, path), Ok((200, _))).then_some(())
            },
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One HTTP request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub at: Instant,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Json,
}

/// An HTTP server on 127.0.0.1 that answers every POST with 200 and keeps what it got:
/// Alertmanager's webhook, Slack and PagerDuty deliveries all land here.
pub struct Receiver {
    pub port: u16,
    got: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&got);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || serve(stream, &sink));
            }
        });
        Receiver { port, got }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.got.lock().unwrap().clone()
    }

    /// Waits for a delivery to `path` for which `check` holds.
    pub fn wait(
        &self,
        timeout: Duration,
        path: &str,
        what: &str,
        check: impl Fn(&Delivery) -> bool,
    ) -> Delivery {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(d) = self
                .deliveries()
                .into_iter()
                .find(|d| d.path == path && check(d))
            {
                return d;
            }
            if Instant::now() > deadline {
                let seen: Vec<String> = self
                    .deliveries()
                    .iter()
                    .map(|d| format!("{} {}", d.path, d.body))
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; deliveries so far:\n{}",
                    seen.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads requests from one connection until it closes, answering each with 200.
fn serve(stream: TcpStream, sink: &Mutex<Vec<Delivery>>) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let at = Instant::now();
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(&body).into_owned()));
        sink.lock().unwrap().push(Delivery {
            at,
            path,
            headers,
            body,
        });
        let reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

/// Alertmanager with the shipped `alertmanager/alertmanager.yml`.
pub struct Alertmanager {
    pub port: u16,
    /// The bearer token the agent's webhook receiver is configured with.
    pub webhook_token: String,
    server: Server,
}

impl Alertmanager {
    /// Webhooks to the agent go to `receiver` (`/webhook/alertmanager`); Slack to
    /// `/slack` and PagerDuty to `/pagerduty` on the same receiver.
    pub fn start_shipped(receiver: &Receiver) -> Alertmanager {
        Self::start_shipped_to(receiver, &receiver.url(""))
    }

    /// As [`Alertmanager::start_shipped`], but the webhook goes to
    /// `{webhook_base}/webhook/alertmanager` (the agent itself).
    pub fn start_shipped_to(receiver: &Receiver, webhook_base: &str) -> Alertmanager {
        Self::start_shipped_to_all(receiver, &[webhook_base.to_owned()])
    }

    /// As [`Alertmanager::start_shipped_to`], for a fleet: the agent's receiver lists
    /// every agent (`{base}/webhook/alertmanager` each), as the shipped file's `[fleet]`
    /// lines show.
    pub fn start_shipped_to_all(receiver: &Receiver, webhook_bases: &[String]) -> Alertmanager {
        let binary = require("prometheus-alertmanager", "prometheus-alertmanager");
        let dir = tempfile::tempdir().unwrap();
        let shipped = repo("alertmanager/alertmanager.yml");
        let mut config = load_yaml(&shipped);
        let webhook_token = "test-webhook-token-1234".to_owned();
        let secrets = Secrets {
            dir: dir.path().to_owned(),
            token: webhook_token.clone(),
            receiver: receiver.url(""),
            webhook: webhook_bases[0].clone(),
        };
        secrets.rewrite(&mut config, "");
        list_every_agent(&mut config, webhook_bases);
        // Templates are found relative to the shipped file, wherever the overlay lives.
        if let Some(Yaml::Sequence(templates)) = map(&mut config, "templates") {
            for t in templates.iter_mut() {
                if let Some(s) = t.as_str() {
                    let absolute = shipped.parent().unwrap().join(s);
                    *t = Yaml::String(absolute.display().to_string());
                }
            }
        }
        let file = dir.path().join("alertmanager.yml");
        std::fs::write(&file, serde_yaml::to_string(&config).unwrap()).unwrap();

        let port = free_port();
        let mut server = Server::spawn(
            "alertmanager",
            dir,
            Command::new(binary)
                .arg(format!("--config.file={}", file.display()))
                .arg(format!(
                    "--storage.path={}",
                    secrets.dir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address="),
        );
        server.wait_ready(port, "/-/ready");
        Alertmanager {
            port,
            webhook_token,
            server,
        }
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// Alerts Alertmanager holds (`/api/v2/alerts`).
    pub fn alerts(&self) -> Vec<Json> {
        let (status, body) = http_get(self.port, "/api/v2/alerts").expect("GET /api/v2/alerts");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Vec<Json>>(&body).expect("a JSON list")
    }
}

/// Replaces secret file paths and outside addresses in an Alertmanager configuration.
struct Secrets {
    dir: PathBuf,
    token: String,
    /// Base URL of the test receiver.
    receiver: String,
    /// Base URL the agent webhook goes to.
    webhook: String,
}

impl Secrets {
    fn file(&self, name: &str, content: &str) -> Yaml {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        Yaml::String(path.display().to_string())
    }

    /// Walks the configuration: `parent` is the key the value sits under.
    fn rewrite(&self, value: &mut Yaml, parent: &str) {
        match value {
            Yaml::Mapping(m) => {
                for (k, v) in m.iter_mut() {
                    let key = k.as_str().unwrap_or("").to_owned();
                    match key.as_str() {
                        "credentials_file" => *v = self.file("webhook_token", &self.token),
                        "api_url_file" | "slack_api_url_file" => {
                            *v = self.file("slack_url", &format!("{}/slack", self.receiver))
                        }
                        k if k.ends_with("_file") && v.as_str().is_some() => {
                            *v = self.file(k, "test-secret")
                        }
                        "url" if parent == "webhook_configs" => {
                            *v = Yaml::String(format!("{}/webhook/alertmanager", self.webhook))
                        }
                        "url" if parent == "pagerduty_configs" => {
                            *v = Yaml::String(format!("{}/pagerduty", self.receiver))
                        }
                        "api_url" | "slack_api_url" => {
                            *v = Yaml::String(format!("{}/slack", self.receiver))
                        }
                        "pagerduty_url" => {
                            *v = Yaml::String(format!("{}/pagerduty", self.receiver))
                        }
                        _ => self.rewrite(v, &key),
                    }
                }
            }
            Yaml::Sequence(items) => {
                for item in items {
                    self.rewrite(item, parent);
                }
            }
            _ => {}
        }
    }
}

/// Prometheus with the shipped `prometheus/prometheus.yml` and rules.
pub struct Prometheus {
    pub port: u16,
    server: Server,
}

impl Prometheus {
    /// Scrapes the agent at `agent_port` and sends alerts to `alertmanager_port`, with
    /// scrape and evaluation `interval` (such as "1s"); everything else as shipped.
    pub fn start_shipped(
        agent_port: u16,
        alertmanager_port: Option<u16>,
        interval: &str,
    ) -> Prometheus {
        Self::start_shipped_fleet(&[agent_port], alertmanager_port, interval)
    }

    /// As [`Prometheus::start_shipped`], scraping every agent of a fleet under the one
    /// agent job.
    pub fn start_shipped_fleet(
        agent_ports: &[u16],
        alertmanager_port: Option<u16>,
        interval: &str,
    ) -> Prometheus {
        Self::start_shipped_with(agent_ports, alertmanager_port, interval, &BTreeMap::new())
    }

    /// As [`Prometheus::start_shipped_fleet`], with the `for:` of the alerts named in
    /// `rule_for` (a timing profile's) in rule files overlaid on the shipped ones.
    pub fn start_shipped_with(
        agent_ports: &[u16],
        alertmanager_port: Option<u16>,
        interval: &str,
        rule_for: &BTreeMap<String, String>,
    ) -> Prometheus {
        let binary = require("prometheus", "prometheus");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let shipped = repo("prometheus/prometheus.yml");
        let mut config = load_yaml(&shipped);

        if let Some(global) = map(&mut config, "global").and_then(Yaml::as_mapping_mut) {
            for key in ["scrape_interval", "evaluation_interval"] {
                global.insert(key.into(), interval.into());
            }
            global.remove("scrape_timeout");
        }
        if let Some(Yaml::Sequence(files)) = map(&mut config, "rule_files") {
            let mut found = BTreeMap::new();
            for (i, f) in files.iter_mut().enumerate() {
                let absolute = shipped.parent().unwrap().join(f.as_str().unwrap_or(""));
                let file = match rule_for.is_empty() {
                    true => absolute,
                    false => overlay_rules(&absolute, rule_for, dir.path(), i, &mut found),
                };
                *f = Yaml::String(file.display().to_string());
            }
            let missing: Vec<&String> = rule_for
                .keys()
                .filter(|a| !found.contains_key(*a))
                .collect();
            assert!(missing.is_empty(), "no shipped rule named {missing:?}");
        }
        let target = |job: &str| match job {
            "redis-failover-agent" => Some(agent_ports.to_vec()),
            "prometheus" => Some(vec![port]),
            "alertmanager" => alertmanager_port.map(|p| vec![p]),
            _ => None,
        };
        if let Some(Yaml::Sequence(jobs)) = map(&mut config, "scrape_configs") {
            jobs.retain(|j| target(j["job_name"].as_str().unwrap_or("")).is_some());
            for job in jobs.iter_mut() {
                let ports = target(job["job_name"].as_str().unwrap_or("")).unwrap();
                let targets: Vec<String> =
                    ports.iter().map(|p| format!("'127.0.0.1:{p}'")).collect();
                let m = job.as_mapping_mut().unwrap();
                m.insert("scrape_interval".into(), interval.into());
                m.remove("scrape_timeout");
                m.insert(
                    "static_configs".into(),
                    serde_yaml::from_str(&format!("[{{targets: [{}]}}]", targets.join(", ")))
                        .unwrap(),
                );
            }
        }
        let alerting = map(&mut config, "alerting").and_then(Yaml::as_mapping_mut);
        match (alerting, alertmanager_port) {
            (Some(alerting), Some(p)) => {
                alerting.insert(
                    "alertmanagers".into(),
                    serde_yaml::from_str(&format!(
                        "[{{static_configs: [{{targets: ['127.0.0.1:{p}']}}]}}]"
                    ))
                    .unwrap(),
                );
            }
            (Some(_), None) => {
                config.as_mapping_mut().unwrap().remove("alerting");
            }
            _ => {}
        }
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, serde_yaml::to_string(&config).unwrap()).unwrap();

        let data = dir.path().join("data");
        let mut server = Server::spawn(
            "prometheus",
            dir,
            Command::new(binary)
                .arg(format!("--config.file={}", file.display()))
                .arg(format!("--storage.tsdb.path={}", data.display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}")),
        );
        server.wait_ready(port, "/-/ready");
        Prometheus { port, server }
    }

    pub fn log(&self) -> String {
        self.server.log()
    }

    /// GETs an API path and returns `data`, or the error Prometheus gave.
    pub fn api(&self, path_and_query: &str) -> Result<Json, String> {
        let (status, body) = http_get(self.port, path_and_query).map_err(|e| e.to_string())?;
        let reply: Json = serde_json::from_str(&body)
            .map_err(|e| format!("HTTP {status}: not JSON ({e}): {body}"))?;
        if reply["status"] == "success" {
            Ok(reply["data"].clone())
        } else {
            Err(format!(
                "HTTP {status}: {}: {}",
                reply["errorType"], reply["error"]
            ))
        }
    }

    /// An instant query's result list.
    pub fn query(&self, promql: &str) -> Result<Vec<Json>, String> {
        let data = self.api(&format!("/api/v1/query?query={}", urlencode(promql)))?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until every scrape target is up.
    pub fn wait_targets_up(&self) {
        wait_for(
            Duration::from_secs(60),
            "every Prometheus target up",
            || {
                let data = self.api("/api/v1/targets").ok()?;
                let active = data["activeTargets"].as_array()?.clone();
                (!active.is_empty() && active.iter().all(|t| t["health"] == "up")).then_some(())
            },
        );
    }

    /// Waits until every rule group has been evaluated at least once.
    pub fn wait_rules_evaluated(&self) {
        wait_for(
            Duration::from_secs(60),
            "every rule group evaluated",
            || {
                let data = self.api("/api/v1/rules").ok()?;
                let groups = data["groups"].as_array()?.clone();
                let evaluated = |g: &Json| {
                    g["lastEvaluation"]
                        .as_str()
                        .is_some_and(|t| !t.starts_with("0001-"))
                };
                (!groups.is_empty() && groups.iter().all(evaluated)).then_some(())
            },
        );
    }

    /// Firing or pending alerts (`/api/v1/alerts`).
    pub fn alerts(&self) -> Vec<Json> {
        self.api("/api/v1/alerts")
            .map(|d| d["alerts"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }
}

/// Reads a file a test needs, with its path in the message when it is missing.
/// The rule files matching the shipped glob `pattern`, each written to `dir` with the
/// `for:` of every alert named in `rule_for` replaced; the overlay's glob. `found`
/// counts the alerts replaced.
fn overlay_rules(
    pattern: &Path,
    rule_for: &BTreeMap<String, String>,
    dir: &Path,
    index: usize,
    found: &mut BTreeMap<String, usize>,
) -> PathBuf {
    let out = dir.join(format!("rules-{index}"));
    std::fs::create_dir_all(&out).unwrap();
    let parent = pattern.parent().unwrap();
    let glob = pattern.file_name().unwrap().to_string_lossy().into_owned();
    let (prefix, suffix) = glob.split_once('*').unwrap_or((&glob, ""));
    for entry in std::fs::read_dir(parent).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let matches = match glob.contains('*') {
            true => name.starts_with(prefix) && name.ends_with(suffix),
            false => name == glob,
        };
        if !matches {
            continue;
        }
        let mut doc = load_yaml(&path);
        let rules = doc["groups"]
            .as_sequence_mut()
            .into_iter()
            .flatten()
            .filter_map(|g| g.get_mut("rules").and_then(Yaml::as_sequence_mut))
            .flatten();
        for rule in rules {
            let Some(duration) = rule["alert"].as_str().and_then(|a| rule_for.get(a)) else {
                continue;
            };
            *found
                .entry(rule["alert"].as_str().unwrap().to_owned())
                .or_default() += 1;
            rule.as_mapping_mut()
                .unwrap()
                .insert("for".into(), duration.as_str().into());
        }
        std::fs::write(out.join(&name), serde_yaml::to_string(&doc).unwrap()).unwrap();
    }
    out.join(&glob)
}

pub fn read(path: &Path) -> String {
    let mut s = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    s
}

/// Gives the agent's receiver one webhook per agent of a fleet: copies of the first,
/// each with its agent's URL.
fn list_every_agent(config: &mut Yaml, webhook_bases: &[String]) {
    let Some(Yaml::Sequence(receivers)) = map(config, "receivers") else {
        return;
    };
    for receiver in receivers.iter_mut() {
        if receiver["name"].as_str() != Some("redis-failover-agent") {
            continue;
        }
        let Some(Yaml::Sequence(hooks)) = receiver.get_mut("webhook_configs") else {
            continue;
        };
        let first = hooks[0].clone();
        hooks.truncate(1);
        for base in &webhook_bases[1..] {
            let mut hook = first.clone();
            hook["url"] = Yaml::String(format!("{base}/webhook/alertmanager"));
            hooks.push(hook);
        }
    }
}
