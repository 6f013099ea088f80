//! What the agent binary writes to its log never holds a credential, and a value from
//! outside cannot forge a log line: a real failover against `moto_server` with
//! `--verbose`, and a stand-in Redis whose error replies carry LF, CR and ESC.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::e2e::*;
use common::moto::{ACCESS_KEY, SECRET_KEY};
use common::{Agent, wait_for};

/// Issue 15: with `--verbose` the AWS access key id was logged three times per DNS
/// change: `aws_smithy_runtime`'s debug event "resolving endpoint" prints the
/// `Credentials` (access key id in clear) once per request (list, change, get-change).
#[test]
fn a_verbose_failover_logs_neither_aws_key() {
    let mut bed = Bed::start();
    let state = tempfile::tempdir().unwrap();
    // `Agent::start` passes --verbose.
    let agent = Agent::start(&bed.config(state.path()));
    agent.wait_metrics(Duration::from_secs(20), "both endpoints up", |m| {
        m.of("redis_up", "app", "east") == Some(1.0) && m.of("redis_up", "app", "west") == Some(1.0)
    });
    bed.east.kill();
    let (status, answer) = post(agent.port, &payload("firing"), TOKEN);
    assert_eq!(status, 200, "{answer}");
    wait_for(Duration::from_secs(60), "DNS to point at west", || {
        (bed.pointing_at() == WEST).then_some(())
    });
    wait_for(Duration::from_secs(30), "the incident to close", || {
        (!closed_outcomes(&journal(state.path())).is_empty()).then_some(())
    });
    let log = agent.log();
    assert!(log.contains("DEBUG"), "not a verbose log:\n{log}");
    for (what, secret) in [
        ("the access key id", ACCESS_KEY),
        ("the secret key", SECRET_KEY),
        ("the webhook token", TOKEN),
        ("the API key", API_KEY),
    ] {
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(secret)).collect();
        assert!(
            lines.is_empty(),
            "{what} is in the log:\n{}",
            lines.join("\n")
        );
    }
}

/// Issue 15: CR, LF and ESC in a Redis error reply were written raw into the text log,
/// so a server could forge log lines. A stand-in server answers every command with an
/// error whose text holds a bare LF, a bare CR and an ANSI colour escape (RESP ends a
/// line only at CR LF, so they reach the agent).
#[test]
fn control_characters_from_redis_cannot_forge_log_lines() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0
                        || stream
                            .write_all(b"-ERR x\nFORGED level=ERROR\x1b[31m red\rCR\r\n")
                            .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    let config = common::config(&[("cache", &[("east", port)])], "");
    let agent = Agent::start_full(&config, &[], &[]);
    wait_for(Duration::from_secs(20), "the error to be logged", || {
        let log = agent.log();
        log.contains("collection failed").then_some(log)
    });
    let log = agent.log();
    assert!(
        log.lines().all(|l| !l.starts_with("FORGED")),
        "a forged line:\n{log}"
    );
    assert!(!log.contains('\x1b'), "a raw escape in the log:\n{log}");
    assert!(
        !log.contains('\r'),
        "a raw carriage return in the log:\n{log}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("collection failed"))
        .unwrap();
    // The collector escapes a reply's control characters where it reads them (ESC as
    // `\u{1b}`), and the log formatter escapes whatever still has one (ESC as `\x1b`):
    // either way the error stays on its line, readable.
    assert!(
        line.contains(r"x\nFORGED level=ERROR")
            && (line.contains(r"\u{1b}[31m red\rCR") || line.contains(r"\x1b[31m red\rCR")),
        "the error is not shown escaped: {line}"
    );
}
