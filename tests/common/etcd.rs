//! A three-member etcd cluster on loopback, for the fleet's coordination tests: each
//! member a child process with its own client and peer ports and a data directory in a
//! tempdir, stopped, frozen and restarted by PID. Dropping the cluster kills them all.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{free_port, kill, require};

/// How long a member (or the whole cluster) may take to answer `endpoint health`. A
/// member starts in about a second here; a cluster elects its leader a second later.
const READY_WITHIN: Duration = Duration::from_secs(20);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

pub struct EtcdCluster {
    dir: TempDir,
    members: Vec<Member>,
    initial_cluster: String,
}

impl EtcdCluster {
    /// Starts three members and waits until each answers `endpoint health`. A member
    /// that exits at once (most likely its port was taken between [`free_port`] and its
    /// bind) makes it start over on new ports, twice at most.
    pub fn start() -> EtcdCluster {
        require("etcd", "etcd-server");
        require("etcdctl", "etcd-client");
        let mut attempt = 1;
        loop {
            let mut cluster = Self::on_free_ports();
            for i in 0..cluster.members.len() {
                cluster.launch(i);
            }
            match cluster.try_wait_healthy() {
                Ok(()) => return cluster,
                Err(exited) if attempt < 3 => {
                    eprintln!("etcd: {exited}; starting the cluster again on new ports");
                    attempt += 1;
                }
                Err(exited) => panic!("{exited}"),
            }
        }
    }

    fn on_free_ports() -> EtcdCluster {
        let members: Vec<Member> = (1..=3)
            .map(|i| Member {
                name: format!("e{i}"),
                client_port: free_port(),
                peer_port: free_port(),
                child: None,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://127.0.0.1:{}", m.name, m.peer_port))
            .collect::<Vec<_>>()
            .join(",");
        EtcdCluster {
            dir: tempfile::tempdir().expect("a tempdir for etcd"),
            members,
            initial_cluster,
        }
    }

    /// Every member's client URL, in member order.
    pub fn client_urls(&self) -> Vec<String> {
        (0..self.members.len())
            .map(|i| self.client_url(i))
            .collect()
    }

    pub fn client_url(&self, member: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[member].client_port)
    }

    /// The index of the member serving `url`.
    pub fn member_of(&self, url: &str) -> usize {
        (0..self.members.len())
            .find(|&i| self.client_url(i) == url)
            .unwrap_or_else(|| panic!("{url} is no member's client URL"))
    }

    pub fn pid(&self, member: usize) -> u32 {
        self.members[member]
            .child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("etcd member {member} is not running"))
    }

    /// Kills the member (SIGKILL) and reaps it; its data directory stays.
    pub fn stop(&mut self, member: usize) {
        if let Some(mut child) = self.members[member].child.take() {
            kill(child.id(), "KILL");
            let _ = child.wait();
        }
    }

    /// Freezes the member (SIGSTOP): its ports stay open and nothing answers.
    pub fn freeze(&self, member: usize) {
        kill(self.pid(member), "STOP");
    }

    /// Wakes a frozen member (SIGCONT).
    pub fn thaw(&self, member: usize) {
        kill(self.pid(member), "CONT");
    }

    /// Starts a stopped member again on the same ports and data directory, and waits
    /// until it answers (which needs a quorum of members running).
    pub fn restart(&mut self, member: usize) {
        self.stop(member);
        self.launch(member);
        if let Err(exited) = self.wait_member(member) {
            panic!("{exited}");
        }
    }

    /// Waits until every running member answers `endpoint health`; `Err` (what to say)
    /// when a member exited meanwhile.
    fn try_wait_healthy(&mut self) -> Result<(), String> {
        for i in 0..self.members.len() {
            if self.members[i].child.is_some() {
                self.wait_member(i)?;
            }
        }
        Ok(())
    }

    fn log(&self, member: usize) -> PathBuf {
        self.dir
            .path()
            .join(format!("{}.log", self.members[member].name))
    }

    fn launch(&mut self, member: usize) {
        let log = self.log(member);
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("the etcd log file");
        let m = &self.members[member];
        let client = format!("http://127.0.0.1:{}", m.client_port);
        let peer = format!("http://127.0.0.1:{}", m.peer_port);
        let child = Command::new("etcd")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(self.dir.path().join(&m.name))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &self.initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "redis-failover-agent-test"])
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("the etcd log file"))
            .stderr(out)
            .spawn()
            .expect("etcd starts");
        self.members[member].child = Some(child);
    }

    /// Waits until `member` answers `endpoint health`; `Err` when it exited meanwhile,
    /// a panic naming its log when it does not answer in time.
    fn wait_member(&mut self, member: usize) -> Result<(), String> {
        let url = self.client_url(member);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            let healthy = Command::new("etcdctl")
                .args(["--endpoints", &url, "--command-timeout", "1s"])
                .args(["endpoint", "health"])
                .env("ETCDCTL_API", "3")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if healthy {
                return Ok(());
            }
            let child = self.members[member].child.as_mut().expect("launched");
            if let Ok(Some(status)) = child.try_wait() {
                self.members[member].child = None;
                return Err(self.failure(member, &format!("exited ({status})")));
            }
            if Instant::now() > deadline {
                panic!(
                    "{}",
                    self.failure(
                        member,
                        &format!("did not answer `endpoint health` within {READY_WITHIN:?}")
                    )
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What went wrong with `member`, with the path and the last lines of its log.
    fn failure(&self, member: usize, what: &str) -> String {
        let log = self.log(member);
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        format!(
            "etcd member {} ({}) {what}; its log is {}; last lines:\n{}",
            self.members[member].name,
            self.client_url(member),
            log.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.stop(i);
        }
    }
}
