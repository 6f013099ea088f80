//! `check-config`: validate the configuration (and the web configuration when
//! `--web.config.file` is given), list every problem, exit 0 or 64.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_CONFIG;
use crate::api::WebConfig;
use crate::config;
use crate::logging;

/// Loads `path` (or the embedded default) and `web` as the agent would, prints the
/// warnings and one summary line per file, or every problem and exits with
/// [`EXIT_CONFIG`].
pub fn check_config(path: Option<&Path>, web: Option<&Path>) -> ExitCode {
    let config = check_agent_config(path);
    let web = web.map_or(ExitCode::SUCCESS, check_web_config);
    if config == ExitCode::SUCCESS {
        web
    } else {
        config
    }
}

fn check_web_config(path: &Path) -> ExitCode {
    match WebConfig::load(Some(path)) {
        Ok(web) => {
            println!(
                "{}: OK (TLS {}, {} basic-auth user(s))",
                path.display(),
                if web.tls.is_some() { "on" } else { "off" },
                web.users.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

fn check_agent_config(path: Option<&Path>) -> ExitCode {
    let name = path.map_or_else(
        || "embedded default".to_owned(),
        |p| p.display().to_string(),
    );
    let loaded = match path {
        Some(path) => config::load_file(path),
        None => Ok(config::embedded_default()),
    };
    match loaded {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {}", logging::escaped(w));
            }
            println!(
                "{name}: OK ({} instances, {} endpoints, {} datacenters)",
                loaded.config.instances.len(),
                loaded.config.endpoint_count(),
                loaded.config.datacenters.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}
