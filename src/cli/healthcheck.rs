//! `healthcheck`: asks the agent's own `/healthz` (or `/readyz`) and exits 0 on a 200,
//! 1 otherwise, with one line saying why. It is the container image's HEALTHCHECK, where
//! there is no shell and no curl.

use std::process::ExitCode;

use clap::builder::BoolishValueParser;
use reqwest::StatusCode;

use super::{
    Agent, Connect, api_settings, base_url, block_on, cause, first_line, http_client, shown,
};

#[derive(Debug, Clone, clap::Args)]
pub struct HealthcheckArgs {
    /// Ask `/readyz` (every endpoint has been collected once) rather than `/healthz` (the
    /// process serves).
    #[arg(long, env = "REDIS_FAILOVER_AGENT_READY", value_parser = BoolishValueParser::new())]
    pub ready: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// `agent` is how the agent was started (its flags or their environment variables),
/// which tells where it listens.
pub fn healthcheck(args: &HealthcheckArgs, agent: &Agent) -> ExitCode {
    match probe(args, agent) {
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

fn probe(args: &HealthcheckArgs, agent: &Agent) -> Result<String, String> {
    let target = base_url(
        &args.connect,
        agent.listen,
        || agent.tls(),
        || api_settings(agent.config),
    )?;
    let base = target.url;
    let path = if args.ready { "readyz" } else { "healthz" };
    let url = base
        .join(path)
        .map_err(|e| format!("{}{path}: {e}", shown(&base)))?;
    // The agent's own certificate is not checked: the answer proves only that the
    // process serves, and nothing secret is sent.
    let client = http_client(&args.connect, args.connect.insecure || target.own_tls)?;
    let (status, body) = block_on(async {
        let response = client.get(url.clone()).send().await?;
        let status = response.status();
        Ok::<_, reqwest::Error>((status, response.text().await?))
    })?
    .map_err(|e| format!("GET {}: {}", shown(&url), cause(&e)))?;
    if status == StatusCode::OK {
        Ok(format!("ok: GET {} answered 200", shown(&url)))
    } else if status == StatusCode::UNAUTHORIZED && url.password().is_none() {
        Err(format!(
            "GET {} answered {status}: the listener asks for a password \
             (basic_auth_users in --web.config.file); give it in \
             --url https://USER:PASSWORD@HOST:PORT/ or REDIS_FAILOVER_AGENT_URL",
            shown(&url)
        ))
    } else {
        Err(format!(
            "GET {} answered {status}: {}",
            shown(&url),
            first_line(&body)
        ))
    }
}
