//! `status`: `GET /api/status` with the operator API key, printed as a table (or as the
//! agent's JSON with `--json`). Any failure is one line and exit status 1; the key is
//! never printed, not even when an answer echoes it.

use std::process::ExitCode;

use clap::builder::BoolishValueParser;
use reqwest::StatusCode;

use super::table::{self, Status};
use super::{
    Agent, Connect, api_settings, base_url, block_on, cause, first_line, http_client, shown,
};
use crate::config::ApiSettings;
use crate::model::Secret;

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// The operator API key (`X-API-Key`). Default: `api.api_key` or `api.api_key_file` of
    /// the configuration. Prefer the environment variable or the file: a flag shows in
    /// the process list.
    #[arg(
        long,
        env = "REDIS_FAILOVER_AGENT_API_KEY",
        hide_env_values = true,
        value_name = "KEY",
        value_parser = |key: &str| Ok::<_, std::convert::Infallible>(Secret::new(key))
    )]
    pub api_key: Option<Secret>,
    /// Print the agent's answer as it came (JSON) rather than a table.
    #[arg(long, env = "REDIS_FAILOVER_AGENT_JSON", value_parser = BoolishValueParser::new())]
    pub json: bool,
    #[command(flatten)]
    pub connect: Connect,
}

/// `agent` is how the agent was started (its flags or their environment variables):
/// where it listens, and its key.
pub fn status(args: &StatusArgs, agent: &Agent) -> ExitCode {
    match fetch(args, agent) {
        Ok(said) => {
            print!("{said}");
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("status: {why}");
            ExitCode::FAILURE
        }
    }
}

fn fetch(args: &StatusArgs, agent: &Agent) -> Result<String, String> {
    // The configuration is read at most once, and only when a flag leaves something out.
    let mut settings: Option<Result<ApiSettings, String>> = None;
    let mut api = || {
        settings
            .get_or_insert_with(|| api_settings(agent.config))
            .clone()
    };
    // The key is sent, so the agent's certificate is verified unless --insecure.
    let base = base_url(&args.connect, agent.listen, || agent.tls(), &mut api)?.url;
    let key = match &args.api_key {
        Some(key) => Some(key.clone()),
        None => api()?.api_key,
    };
    let url = base
        .join("api/status")
        .map_err(|e| format!("{}api/status: {e}", shown(&base)))?;
    let client = http_client(&args.connect, args.connect.insecure)?;
    let mut request = client.get(url.clone());
    if let Some(key) = &key {
        request = request.header("X-API-Key", key.expose());
    }
    let (code, body) = block_on(async {
        let response = request.send().await?;
        let code = response.status();
        Ok::<_, reqwest::Error>((code, response.text().await?))
    })?
    .map_err(|e| format!("GET {}: {}", shown(&url), cause(&e)))?;
    let redact = |text: &str| match &key {
        Some(key) => key.redact(text),
        None => text.to_owned(),
    };
    if code != StatusCode::OK {
        let mut why = format!(
            "GET {} answered {code}: {}",
            shown(&url),
            redact(&error_message(&body))
        );
        if code == StatusCode::UNAUTHORIZED && key.is_none() {
            why.push_str(
                " (no key given: set api.api_key in the configuration, or \
                 REDIS_FAILOVER_AGENT_API_KEY)",
            );
        }
        return Err(why);
    }
    if args.json {
        let mut body = redact(&body);
        if !body.ends_with('\n') {
            body.push('\n');
        }
        return Ok(body);
    }
    let answer: Status = serde_json::from_str(&body).map_err(|e| {
        format!(
            "GET {} answered 200 with a body that is not the status: {e}",
            shown(&url)
        )
    })?;
    Ok(redact(&table::render(&answer)))
}

/// The operator API's `{"error": "..."}`, else the body's first line.
fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(first_line))
        .unwrap_or_else(|| first_line(body))
}
