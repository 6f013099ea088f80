//! `healthcheck`: asks the agent's own `/healthz` (or `/readyz`) and exits 0 on a 200,
//! 1 otherwise, with one line saying why. It is the container image's HEALTHCHECK, where
//! there is no shell and no curl.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use clap::builder::BoolishValueParser;
use reqwest::StatusCode;

use super::{Connect, api_settings, base_url, block_on, cause, first_line, http_client, shown};

#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArgs {
    /// Ask `/readyz` (every endpoint has been collected once) rather than `/healthz` (the
    /// process serves).
    #[arg(long, env = "REDIS_FAILOVER_AGENT_READY", value_parser = BoolishValueParser::new())]
    pub ready: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// `config` and `listen` are the agent's own `--config` and `--listen` (or their
/// environment variables), which tell where it listens.
pub fn healthcheck(
    args: &HealthcheckArgs,
    config: Option<&Path>,
    listen: Option<SocketAddr>,
) -> ExitCode {
    match probe(args, config, listen) {
        Ok(said) => {
            println!("{said}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("healthcheck: {why}");
            ExitCode::FAILURE
        }
    }
}

fn probe(
    args: &HealthcheckArgs,
    config: Option<&Path>,
    listen: Option<SocketAddr>,
) -> Result<String, String> {
    let base = base_url(&args.connect, listen, || api_settings(config))?;
    let path = if args.ready { "readyz" } else { "healthz" };
    let url = base
        .join(path)
        .map_err(|e| format!("{}{path}: {e}", shown(&base)))?;
    let client = http_client(&args.connect)?;
    let (status, body) = block_on(async {
        let response = client.get(url.clone()).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    })?
    .map_err(|e| format!("GET {}: {}", shown(&url), cause(&e)))?;
    if status == StatusCode::OK {
        Ok(format!("ok: GET {} answered 200", shown(&url)))
    } else {
        Err(format!(
            "GET {} answered {status}: {}",
            shown(&url),
            first_line(&body)
        ))
    }
}
