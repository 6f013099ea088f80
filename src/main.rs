use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::BoolishValueParser;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use tracing::warn;

use redis_failover_agent::api::{self, WebConfig};
use redis_failover_agent::app::{self, Options};
use redis_failover_agent::cli::{self as commands, EXIT_CONFIG, HealthcheckArgs, StatusArgs};
use redis_failover_agent::config::{self, ConfigError, Loaded};
use redis_failover_agent::logging;

/// Watches Redis in several datacenters, publishes what it sees to Prometheus, and
/// moves traffic by DNS when a datacenter is confirmed to be in trouble.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (YAML or JSON). Without it, the embedded default monitors
    /// 127.0.0.1:6379 as instance `local` in datacenter `local`.
    #[arg(long, short, global = true, env = "REDIS_FAILOVER_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding api.host and api.port.
    #[arg(long, global = true, env = "REDIS_FAILOVER_AGENT_LISTEN")]
    listen: Option<SocketAddr>,
    /// Address to listen on, as exporters take it (`:9121` for every IPv4 interface);
    /// overrides api.host, api.port and --listen.
    #[arg(long = "web.listen-address", global = true, env = "REDIS_FAILOVER_AGENT_WEB_LISTEN_ADDRESS",
        value_parser = api::parse_listen_address)]
    web_listen_address: Option<SocketAddr>,
    /// Path under which Prometheus scrapes the metrics.
    #[arg(long = "web.telemetry-path", env = "REDIS_FAILOVER_AGENT_WEB_TELEMETRY_PATH",
        default_value = api::METRICS_PATH, value_parser = api::parse_telemetry_path)]
    web_telemetry_path: String,
    /// Web configuration file in the Prometheus exporter toolkit's format: TLS, client
    /// certificates, basic auth, response headers. Read again on SIGHUP.
    #[arg(
        long = "web.config.file",
        global = true,
        env = "REDIS_FAILOVER_AGENT_WEB_CONFIG_FILE"
    )]
    web_config_file: Option<PathBuf>,
    /// Monitor only: never change DNS, whatever auto_failover says.
    #[arg(long, env = "REDIS_FAILOVER_AGENT_NO_FAILOVER", value_parser = BoolishValueParser::new())]
    no_failover: bool,
    /// Start over when the decision journal is damaged (corrupt, cut or emptied): move
    /// its files aside as `<name>.damaged-<unix seconds>` and start with an empty one.
    /// Without it the agent refuses to start on a damaged journal. A sound journal is
    /// kept either way.
    #[arg(long, env = "REDIS_FAILOVER_AGENT_JOURNAL_START_OVER", value_parser = BoolishValueParser::new())]
    journal_start_over: bool,
    /// Log the agent's own debug events (other crates stay at info; see `RUST_LOG`).
    #[arg(long, short, env = "REDIS_FAILOVER_AGENT_VERBOSE", value_parser = BoolishValueParser::new())]
    verbose: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "REDIS_FAILOVER_AGENT_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the configuration (and --web.config.file when given), list every
    /// problem, exit 0 or 64.
    CheckConfig,
    /// Exit 0 if the running agent answers /healthz (or /readyz) with 200, else 1.
    ///
    /// For container health checks without a shell. Finds the agent as it listens
    /// (--web.listen-address or --listen, else api.host and api.port of the
    /// configuration), or at --url; on failure prints one line saying why.
    Healthcheck(HealthcheckArgs),
    /// Print the running agent's status as a table (GET /api/status).
    ///
    /// Per instance the active datacenter; per endpoint up or down, the health score, the
    /// anomaly score and the age of its latest collection round. The operator API key
    /// comes from --api-key, or from the configuration (api.api_key, api.api_key_file).
    Status(StatusArgs),
    /// Print the shell completion script for SHELL.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or the page of one COMMAND.
    Man {
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    // One TLS crypto provider for every client in the process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let agent = commands::Agent {
        config,
        listen: cli.web_listen_address.or(cli.listen),
        web_config: cli.web_config_file.as_deref(),
    };
    match &cli.command {
        Some(Command::CheckConfig) => {
            commands::check_config(config, cli.web_config_file.as_deref())
        }
        Some(Command::Healthcheck(args)) => commands::healthcheck(args, &agent),
        Some(Command::Status(args)) => commands::status(args, &agent),
        Some(Command::Completions { shell }) => commands::completions(Cli::command(), *shell),
        Some(Command::Man { command }) => commands::man(Cli::command(), command.as_deref()),
        None => serve(cli),
    }
}

fn load(path: Option<&PathBuf>) -> Result<Loaded, ConfigError> {
    match path {
        Some(path) => config::load_file(path),
        None => Ok(config::embedded_default()),
    }
}

fn serve(cli: Cli) -> ExitCode {
    init_logging(cli.verbose, cli.log_format);
    let loaded = match load(cli.config.as_ref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    for w in &loaded.warnings {
        warn!("{w}");
    }
    let web = match WebConfig::load(cli.web_config_file.as_deref()) {
        Ok(web) => web,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let options = Options {
        config_path: cli.config,
        listen: cli.web_listen_address.or(cli.listen),
        web_config_file: cli.web_config_file,
        web,
        telemetry_path: cli.web_telemetry_path,
        no_failover: cli.no_failover,
        journal_start_over: cli.journal_start_over,
    };
    // One thread carries all the I/O: a thousand endpoints at a 5 s interval keep it a
    // few percent busy, and without work stealing a round's wake-ups stay on one core
    // (this cut collection CPU by a third). Rendering /metrics runs on the blocking pool.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(loaded.config, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "agent failed");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: bool, format: LogFormat) {
    let format = match format {
        LogFormat::Text => logging::Format::Text,
        LogFormat::Json => logging::Format::Json,
    };
    logging::init(verbose, format);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every flag, the subcommands' included, can be set by the environment as
    /// `REDIS_FAILOVER_AGENT_<FLAG>` (a container or unit sets variables more easily
    /// than it rewrites a command), and `--help` shows it.
    #[test]
    fn every_flag_has_its_environment_variable() {
        fn check(cmd: &clap::Command, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let Some(long) = arg.get_long() else { continue };
                if matches!(long, "help" | "version") {
                    continue;
                }
                let expected = format!(
                    "REDIS_FAILOVER_AGENT_{}",
                    long.to_uppercase().replace(['-', '.'], "_")
                );
                if arg.get_env().and_then(|e| e.to_str()) != Some(expected.as_str()) {
                    missing.push(format!("{} --{long}: expected {expected}", cmd.get_name()));
                }
            }
            for sub in cmd.get_subcommands() {
                check(sub, missing);
            }
        }
        let mut missing = Vec::new();
        check(&Cli::command(), &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
