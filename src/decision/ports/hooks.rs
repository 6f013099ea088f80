//! The hooks port: the operator's commands around a failover (`hooks.pre_failover`,
//! `hooks.post_failover`). A pre hook that exits non-zero, cannot start or runs out of
//! time vetoes the failover; its output is kept for the record.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What the hook is told, as environment variables.
#[derive(Debug, Clone)]
pub struct HookContext<'a> {
    pub instance: &'a str,
    pub from: &'a str,
    pub to: &'a str,
    /// `failover` or `failback`.
    pub action: &'a str,
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    pub program: String,
    /// Exit status; `None` when it could not start, timed out or died by a signal.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// Why it could not start, if it could not.
    pub spawn_error: Option<String>,
    pub stdout: String,
    pub stderr: String,
    pub millis: u64,
}

impl HookRun {
    pub fn succeeded(&self) -> bool {
        self.exit_code == Some(0)
    }

    /// One line for the decision record: how it ended and the end of its output.
    pub fn summary(&self) -> String {
        let how = if let Some(e) = &self.spawn_error {
            format!("could not start: {e}")
        } else if self.timed_out {
            format!("killed after {} ms (timeout)", self.millis)
        } else {
            match self.exit_code {
                Some(code) => format!("exited with {code}"),
                None => "killed by a signal".to_owned(),
            }
        };
        let said = self.stderr.trim();
        let said = if said.is_empty() {
            self.stdout.trim()
        } else {
            said
        };
        let tail: String = said
            .lines()
            .last()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect();
        if tail.is_empty() {
            format!("{} {how}", self.program)
        } else {
            format!("{} {how}: {tail}", self.program)
        }
    }
}

/// Runs the operator's hooks (`actuators::hooks` starts them as processes).
#[async_trait]
pub trait HookRunner: Send + Sync + fmt::Debug {
    /// Runs `args` (program first) with the context in its environment, killing it after
    /// `timeout`. Never fails: a program that cannot start is a run that did not succeed.
    async fn run(&self, args: &[String], context: &HookContext<'_>, timeout: Duration) -> HookRun;
}
