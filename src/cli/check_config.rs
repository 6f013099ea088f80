//! `check-config`: validate the configuration, list every problem, exit 0 or 64.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_CONFIG;
use crate::config;
use crate::logging;

/// Loads `path` (or the embedded default) as the agent would, prints its warnings and
/// one summary line, or every problem and exits with [`EXIT_CONFIG`].
pub fn check_config(path: Option<&Path>) -> ExitCode {
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
