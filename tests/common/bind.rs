//! BIND 9 (`named`) as the authoritative server of a zone `example.test` that takes
//! RFC 2136 updates signed with TSIG, for tests/rfc2136.rs (and a zone of the
//! scenario bed's, as the DNS its clients resolve through). Started in the foreground
//! (`named -g`) on a free loopback port with its files in a temporary directory, and
//! stopped by PID when dropped. Another writer (`nsupdate`, with its own key) changes
//! records behind the agent's back, and `dig` looks at the zone without the agent.
//!
//! Two keys: `failover-key`, the agent's, granted what each test says; `admin-key`,
//! the other writer's, granted every name of the zone. Unsigned updates are refused.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tempfile::TempDir;

use super::{free_port, http_get, require, wait_for};

pub const ZONE: &str = "example.test";
pub const KEY_NAME: &str = "failover-key";
/// The agent's key, as `tsig-keygen` prints one.
pub const KEY_SECRET: &str = "3Zn4h6NdEJoMvWJ6g1Fm5M3jYzT8P2o9kzVbQ3uDWc0=";
const ADMIN_KEY: &str = "admin-key";
const ADMIN_SECRET: &str = "r8wq7C2qH5oJ0cT1Qm9b5sVx2yLd4eKf6gHj8kLm0nA=";

/// The record the minimal grant covers, and the host it starts at.
pub const CACHE: &str = "redis-cache.example.test";
pub const SESSIONS: &str = "redis-sessions.example.test";
pub const EAST: &str = "redis-east.example.test";

/// The minimal grant: the agent's key may change the one CNAME a failover moves.
pub const MINIMAL_GRANT: &str = "grant failover-key name redis-cache.example.test. CNAME;";
/// Every CNAME in the zone, for the contract's records.
pub const ZONE_GRANT: &str = "grant failover-key zonesub CNAME;";

pub struct Bind {
    pub port: u16,
    /// The zone it serves, without the trailing dot.
    pub zone: String,
    stats_port: u16,
    dir: TempDir,
    child: Option<Child>,
    /// Updates `nsupdate` sent, to tell the agent's from the other writer's.
    others: AtomicUsize,
}

impl Bind {
    /// `named` serving `example.test` with `redis-cache` and `redis-sessions` CNAMEs to
    /// the east host; `grant` is the agent's line of the zone's `update-policy`.
    pub fn start(grant: &str) -> Bind {
        Self::serving(
            ZONE,
            &[
                (CACHE, &format!("{EAST}.")),
                (SESSIONS, &format!("{EAST}.")),
            ],
            grant,
        )
    }

    /// `named` serving `zone` with these CNAMEs (name, target), `grant` as above.
    pub fn serving(zone: &str, cnames: &[(&str, &str)], grant: &str) -> Bind {
        require("named", "bind9");
        require("nsupdate", "bind9-dnsutils");
        require("dig", "bind9-dnsutils");
        let dir = tempfile::tempdir().unwrap();
        let (port, stats_port) = (free_port(), free_port());
        let d = dir.path().display();
        let conf = format!(
            r#"options {{
    directory "{d}";
    pid-file "{d}/named.pid";
    session-keyfile "{d}/session.key";
    managed-keys-directory "{d}";
    listen-on port {port} {{ 127.0.0.1; }};
    listen-on-v6 {{ none; }};
    recursion no;
    dnssec-validation no;
    notify no;
}};
statistics-channels {{ inet 127.0.0.1 port {stats_port} allow {{ 127.0.0.1; }}; }};
key "{KEY_NAME}" {{ algorithm hmac-sha256; secret "{KEY_SECRET}"; }};
key "{ADMIN_KEY}" {{ algorithm hmac-sha256; secret "{ADMIN_SECRET}"; }};
zone "{zone}" {{
    type primary;
    file "{d}/{zone}.zone";
    update-policy {{
        {grant}
        grant {ADMIN_KEY} zonesub ANY;
    }};
}};
"#
        );
        std::fs::write(dir.path().join("named.conf"), conf).unwrap();
        let mut records = format!(
            "$ORIGIN {zone}.\n$TTL 60\n\
             @ IN SOA ns.{zone}. admin.{zone}. 1 3600 600 86400 60\n\
             @ IN NS ns.{zone}.\n\
             ns IN A 127.0.0.1\n"
        );
        for (name, target) in cnames {
            records.push_str(&format!("{name}. IN CNAME {target}\n"));
        }
        std::fs::write(dir.path().join(format!("{zone}.zone")), records).unwrap();
        let mut bind = Bind {
            port,
            zone: zone.to_owned(),
            stats_port,
            dir,
            child: None,
            others: AtomicUsize::new(0),
        };
        bind.launch();
        bind
    }

    /// `host:port`, as `dns_config.server` gives it.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("named.log")).unwrap();
        // -g: foreground, logging to stderr; -4: no IPv6; -n 1: one worker thread.
        let child = Command::new("named")
            .args(["-g", "-4", "-n", "1", "-c"])
            .arg(self.dir.path().join("named.conf"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("named starts");
        self.child = Some(child);
        wait_for(Duration::from_secs(20), "named to answer", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("named exited with {status}:\n{}", self.log());
            }
            self.dig(&self.zone, "SOA")
        });
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("named.log")).unwrap_or_default()
    }

    /// Stops `named` (SIGTERM) and waits for it to exit; the zone and its journal stay.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            super::kill(child.id(), "TERM");
            wait_for(Duration::from_secs(15), "named to exit", || {
                child.try_wait().ok().flatten()
            });
        }
    }

    /// Starts `named` again on the same port, with the zone as it was left.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// What `dig` reads at the server (over TCP): the record's data, one per line;
    /// `None` when it has none.
    pub fn dig(&self, name: &str, record_type: &str) -> Option<String> {
        dig_at(self.port, name, record_type)
    }

    /// Sets `name` to `value` (a CNAME unless `record_type` says otherwise) with
    /// `nsupdate` and the other writer's key, as another writer would.
    pub fn put(&self, name: &str, record_type: &str, value: &str, ttl: u32) {
        let commands = format!(
            "server 127.0.0.1 {port}\nzone {zone}\n\
             update delete {name}. {record_type}\n\
             update add {name}. {ttl} {record_type} {value}\nsend\n",
            port = self.port,
            zone = self.zone,
        );
        self.nsupdate(&commands);
        self.others.fetch_add(1, Ordering::SeqCst);
    }

    fn nsupdate(&self, commands: &str) {
        let key = self.key_file();
        let mut child = Command::new("nsupdate")
            .arg("-v")
            .arg("-k")
            .arg(&key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsupdate starts");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nsupdate failed:\n{commands}\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn key_file(&self) -> PathBuf {
        let path = self.dir.path().join("admin.key");
        if !Path::new(&path).exists() {
            std::fs::write(
                &path,
                format!(
                    "key \"{ADMIN_KEY}\" {{ algorithm hmac-sha256; secret \"{ADMIN_SECRET}\"; }};\n"
                ),
            )
            .unwrap();
        }
        path
    }

    /// UPDATE requests the server received from anyone but [`Bind::put`], by its
    /// own statistics.
    pub fn agent_updates(&self) -> usize {
        self.opcode("UPDATE") - self.others.load(Ordering::SeqCst)
    }

    /// Requests of `opcode` the server received, by its statistics channel.
    fn opcode(&self, opcode: &str) -> usize {
        let (status, body) =
            http_get(self.stats_port, "/json/v1/server").expect("named's statistics");
        assert_eq!(status, 200, "{body}");
        let stats: serde_json::Value = serde_json::from_str(&body).expect("statistics in JSON");
        stats["opcodes"][opcode].as_u64().unwrap_or(0) as usize
    }
}

impl Drop for Bind {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What `dig` reads at the server on 127.0.0.1:`port` (over TCP), as [`Bind::dig`].
pub fn dig_at(port: u16, name: &str, record_type: &str) -> Option<String> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string()])
        .args(["+tcp", "+short", "+norecurse", "+time=1", "+tries=1"])
        .args([name, record_type])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty() && !text.starts_with(';')).then_some(text)
}
