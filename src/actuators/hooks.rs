//! The operator's hooks around a failover, run as processes: the context in their
//! environment, a timeout, and their output kept up to [`OUTPUT_LIMIT`] per stream.

use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::decision::ports::{HookContext, HookRun, HookRunner};

/// Output kept per stream: enough to say why, never enough to flood the journal.
pub const OUTPUT_LIMIT: usize = 4096;

/// Starts each hook as a process of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessHooks;

#[async_trait]
impl HookRunner for ProcessHooks {
    async fn run(&self, args: &[String], context: &HookContext<'_>, timeout: Duration) -> HookRun {
        run(args, context, timeout).await
    }
}

/// Runs `args` (program first) with the context in its environment as
/// `REDIS_INSTANCE`, `FROM_DATACENTER`, `TO_DATACENTER` and `FAILOVER_ACTION`, killing it
/// after `timeout`.
async fn run(args: &[String], context: &HookContext<'_>, timeout: Duration) -> HookRun {
    let started = Instant::now();
    let program = args.first().cloned().unwrap_or_default();
    let mut run = HookRun {
        program: program.clone(),
        exit_code: None,
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: String::new(),
        millis: 0,
    };
    let spawned = Command::new(&program)
        .args(&args[1.min(args.len())..])
        .env("REDIS_INSTANCE", context.instance)
        .env("FROM_DATACENTER", context.from)
        .env("TO_DATACENTER", context.to)
        .env("FAILOVER_ACTION", context.action)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            run.spawn_error = Some(e.to_string());
            return run;
        }
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out = tokio::spawn(read_limited(stdout));
    let err = tokio::spawn(read_limited(stderr));
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => run.exit_code = status.code(),
        Ok(Err(e)) => run.spawn_error = Some(e.to_string()),
        Err(_) => {
            run.timed_out = true;
            let _ = child.kill().await;
        }
    }
    // The readers end when the pipes close; a grandchild holding them open is not
    // waited for long.
    let grace = Duration::from_millis(500);
    run.stdout = tokio::time::timeout(grace, out)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    run.stderr = tokio::time::timeout(grace, err)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    run.millis = started.elapsed().as_millis() as u64;
    run
}

/// Reads a stream to its end, keeping the first [`OUTPUT_LIMIT`] bytes.
async fn read_limited<R: AsyncRead + Unpin>(stream: Option<R>) -> String {
    let Some(mut stream) = stream else {
        return String::new();
    };
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CX: HookContext<'static> = HookContext {
        instance: "cache",
        from: "east",
        to: "west",
        action: "failover",
    };

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn the_context_is_in_the_environment_and_success_is_exit_zero() {
        let run = run(
            &sh("echo \"$REDIS_INSTANCE $FROM_DATACENTER->$TO_DATACENTER $FAILOVER_ACTION\""),
            &CX,
            Duration::from_secs(5),
        )
        .await;
        assert!(run.succeeded(), "{run:?}");
        assert_eq!(run.stdout, "cache east->west failover\n");
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_a_veto_with_its_reason() {
        let run = run(
            &sh("echo checking; echo 'replication lag too high' >&2; exit 3"),
            &CX,
            Duration::from_secs(5),
        )
        .await;
        assert!(!run.succeeded());
        assert_eq!(run.exit_code, Some(3));
        assert_eq!(
            run.summary(),
            "/bin/sh exited with 3: replication lag too high"
        );
    }

    #[tokio::test]
    async fn a_hook_that_hangs_is_killed_at_the_timeout() {
        let run = run(&sh("sleep 30"), &CX, Duration::from_millis(200)).await;
        assert!(run.timed_out && !run.succeeded(), "{run:?}");
        assert!(run.millis < 5_000, "{run:?}");
        assert!(run.summary().contains("timeout"), "{}", run.summary());
    }

    #[tokio::test]
    async fn a_missing_program_does_not_succeed() {
        let run = run(
            &["/nonexistent/drain".to_owned()],
            &CX,
            Duration::from_secs(1),
        )
        .await;
        assert!(!run.succeeded());
        assert!(
            run.summary()
                .starts_with("/nonexistent/drain could not start")
        );
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let run = run(&sh("yes x | head -c 100000"), &CX, Duration::from_secs(5)).await;
        assert!(run.succeeded(), "{run:?}");
        assert_eq!(run.stdout.len(), OUTPUT_LIMIT);
    }
}
