use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use tracing::warn;

use redis_failover_agent::api::{self, WebConfig};
use redis_failover_agent::app::{self, Options};
use redis_failover_agent::config::{self, ConfigError, Loaded};
use redis_failover_agent::logging;

/// Exit status for a configuration that cannot be used (EX_USAGE).
const EXIT_CONFIG: u8 = 64;

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
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address to listen on, as exporters take it (`:9121` for every IPv4 interface);
    /// overrides api.host, api.port and --listen.
    #[arg(long = "web.listen-address", env = "REDIS_FAILOVER_AGENT_WEB_LISTEN_ADDRESS",
        value_parser = api::parse_listen_address)]
    web_listen_address: Option<SocketAddr>,
    /// Path under which Prometheus scrapes the metrics.
    #[arg(long = "web.telemetry-path", env = "REDIS_FAILOVER_AGENT_WEB_TELEMETRY_PATH",
        default_value = api::METRICS_PATH, value_parser = api::parse_telemetry_path)]
    web_telemetry_path: String,
    /// Web configuration file in the Prometheus exporter toolkit's format: TLS, client
    /// certificates, basic auth, response headers. Read again on SIGHUP.
    #[arg(long = "web.config.file", env = "REDIS_FAILOVER_AGENT_WEB_CONFIG_FILE")]
    web_config_file: Option<PathBuf>,
    /// Monitor only: never change DNS, whatever auto_failover says.
    #[arg(long)]
    no_failover: bool,
    /// Start over when the decision journal is damaged (corrupt, cut or emptied): move
    /// its files aside as `<name>.damaged-<unix seconds>` and start with an empty one.
    /// Without it the agent refuses to start on a damaged journal. A sound journal is
    /// kept either way.
    #[arg(long)]
    journal_start_over: bool,
    /// Log the agent's own debug events (other crates stay at info; see `RUST_LOG`).
    #[arg(long, short)]
    verbose: bool,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate the configuration, list every problem, exit 0 or 64.
    CheckConfig,
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
    match cli.command {
        Some(Command::CheckConfig) => check_config(cli.config),
        None => serve(cli),
    }
}

fn load(path: Option<&PathBuf>) -> Result<Loaded, ConfigError> {
    match path {
        Some(path) => config::load_file(path),
        None => Ok(config::embedded_default()),
    }
}

fn check_config(path: Option<PathBuf>) -> ExitCode {
    let name = path.as_ref().map_or_else(
        || "embedded default".to_owned(),
        |p| p.display().to_string(),
    );
    match load(path.as_ref()) {
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
