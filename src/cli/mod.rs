//! The commands beside the agent itself: `check-config`, `healthcheck` (for images
//! without a shell or curl), `status` (the operator API as a table), and the shell
//! completions and manual pages generated from the command line.
//!
//! Each returns an exit status and says what went wrong in one line: their callers are
//! a container's health check, a script, or a person at a terminal. The clients find the
//! agent as the agent finds its own listener (`--web.listen-address` or `--listen`, else
//! `api.host`/`api.port`; HTTPS when `--web.config.file` has `tls_server_config`), so
//! `healthcheck` needs no argument inside the agent's container.

mod check_config;
mod docs;
mod healthcheck;
mod status;
mod table;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use url::Url;

use crate::api::WebConfig;
use crate::config::{self, ApiSettings, ConfigError};
use crate::config_kit::duration::Seconds;

pub use check_config::check_config;
pub use docs::{completions, man};
pub use healthcheck::{HealthcheckArgs, healthcheck};
pub use status::{StatusArgs, status};

/// Exit status for a configuration that cannot be used (EX_USAGE).
pub const EXIT_CONFIG: u8 = 64;

/// How `healthcheck` and `status` reach the agent.
#[derive(Debug, Clone, clap::Args)]
pub struct Connect {
    /// The agent's address, e.g. `https://agent.example:8080`. Default: `--listen`, else
    /// `api.host` and `api.port` of the configuration (an unspecified address such as
    /// 0.0.0.0 is asked on loopback).
    #[arg(long, env = "REDIS_FAILOVER_AGENT_URL", value_name = "URL")]
    pub url: Option<Url>,
    /// How long to wait for the whole answer: `3s`, `500ms`.
    #[arg(
        long,
        env = "REDIS_FAILOVER_AGENT_TIMEOUT",
        default_value = "3s",
        value_name = "DURATION",
        value_parser = Seconds::parse
    )]
    pub timeout: Duration,
    /// Accept any TLS certificate from the agent (a self-signed one on loopback). The
    /// connection is then encrypted but not authenticated.
    #[arg(long, env = "REDIS_FAILOVER_AGENT_INSECURE", value_parser = BoolishValueParser::new())]
    pub insecure: bool,
}

/// How the agent was started: the files and flags that say where it listens.
#[derive(Debug, Clone, Copy)]
pub struct Agent<'a> {
    /// `--config`.
    pub config: Option<&'a Path>,
    /// `--web.listen-address`, else `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--web.config.file`.
    pub web_config: Option<&'a Path>,
}

impl Agent<'_> {
    /// Whether the agent's listener speaks TLS, from its web configuration.
    fn tls(&self) -> Result<bool, String> {
        WebConfig::load(self.web_config)
            .map(|web| web.tls.is_some())
            .map_err(one_line)
    }
}

/// Where the agent serves.
#[derive(Debug)]
struct Target {
    url: Url,
    /// The address was found from the agent's own flags and files (not `--url`), and
    /// its listener has TLS: the certificate is the agent's own, usually issued for a
    /// name rather than the loopback address asked.
    own_tls: bool,
}

/// Where the agent serves: `--url`, else `--listen`, else the configuration's `api`;
/// HTTPS when `tls()` says the listener has TLS.
fn base_url(
    connect: &Connect,
    listen: Option<SocketAddr>,
    tls: impl FnOnce() -> Result<bool, String>,
    api: impl FnOnce() -> Result<ApiSettings, String>,
) -> Result<Target, String> {
    if let Some(url) = &connect.url {
        // A base with a path (`https://proxy/agent`) is a folder the routes are under.
        let mut url = url.clone();
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        return Ok(Target {
            url,
            own_tls: false,
        });
    }
    let address = match listen {
        Some(listen) => loopback_if_unspecified(listen).to_string(),
        None => {
            let api = api()?;
            match api.host.parse::<IpAddr>() {
                Ok(ip) => loopback_if_unspecified(SocketAddr::new(ip, api.port)).to_string(),
                Err(_) => format!("{}:{}", api.host, api.port),
            }
        }
    };
    let own_tls = tls()?;
    let scheme = if own_tls { "https" } else { "http" };
    let url = Url::parse(&format!("{scheme}://{address}/"))
        .map_err(|e| format!("{scheme}://{address}/: {e}"))?;
    Ok(Target { url, own_tls })
}

/// A URL as it may be printed: without the user and password that `--url` may carry
/// (reqwest sends them as basic authentication).
fn shown(url: &Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// An agent listening on every address (0.0.0.0, ::) is asked on loopback.
fn loopback_if_unspecified(mut address: SocketAddr) -> SocketAddr {
    match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => address.set_ip(Ipv4Addr::LOCALHOST.into()),
        IpAddr::V6(ip) if ip.is_unspecified() => address.set_ip(Ipv6Addr::LOCALHOST.into()),
        _ => {}
    }
    address
}

/// The `api` section of the configuration the agent runs with, or one line saying why it
/// cannot be read.
fn api_settings(path: Option<&Path>) -> Result<ApiSettings, String> {
    let loaded = match path {
        Some(path) => config::load_file(path),
        None => Ok(config::embedded_default()),
    };
    loaded.map(|loaded| loaded.config.api).map_err(one_line)
}

/// A file the agent reads that cannot be used, in one line: the problems themselves are
/// for `check-config`.
fn one_line(error: ConfigError) -> String {
    match error {
        ConfigError::Read { .. } => error.to_string(),
        ConfigError::Invalid {
            source_name,
            problems,
        } => format!(
            "{source_name} has {} problem(s); `redis-failover-agent check-config` lists them",
            problems.len()
        ),
    }
}

/// One client per command: never through a proxy (the agent is asked directly), and no
/// redirects (an answer is the agent's own). `insecure` accepts any certificate.
fn http_client(connect: &Connect, insecure: bool) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect.timeout)
        .timeout(connect.timeout)
        .tls_danger_accept_invalid_certs(insecure)
        .user_agent(concat!("redis-failover-agent/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", cause(&e)))
}

/// What went wrong with a request, in a few words: the innermost cause ("Connection
/// refused (os error 111)", a TLS verification error) rather than reqwest's outer
/// "error sending request".
fn cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer in time".to_owned();
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// The first line of an answer's body, at most 200 characters: enough to say why, never
/// a page of HTML.
fn first_line(body: &str) -> String {
    shorten(body.lines().next().unwrap_or("").trim(), 200)
}

/// The first `max` characters of `text`, and `...` if there were more.
fn shorten(text: &str, max: usize) -> String {
    let mut short: String = text.chars().take(max).collect();
    if short.len() < text.len() {
        short.push_str("...");
    }
    short
}

/// A current-thread runtime for one request.
fn block_on<T>(future: impl Future<Output = T>) -> Result<T, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    Ok(runtime.block_on(future))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(url: Option<&str>) -> Connect {
        Connect {
            url: url.map(|u| Url::parse(u).unwrap()),
            timeout: Duration::from_secs(3),
            insecure: false,
        }
    }

    fn api(host: &str, port: u16) -> impl FnOnce() -> Result<ApiSettings, String> {
        let settings = ApiSettings {
            enabled: true,
            host: host.to_owned(),
            port,
            api_key: None,
        };
        move || Ok(settings)
    }

    #[test]
    fn the_agent_is_found_as_it_listens() {
        let url = |c: &Connect, listen: Option<&str>, host, port| {
            base_url(
                c,
                listen.map(|l| l.parse().unwrap()),
                || Ok(false),
                api(host, port),
            )
            .unwrap()
            .url
            .to_string()
        };
        let none = connect(None);
        assert_eq!(url(&none, None, "0.0.0.0", 8080), "http://127.0.0.1:8080/");
        assert_eq!(url(&none, None, "::", 9000), "http://[::1]:9000/");
        assert_eq!(url(&none, None, "10.1.2.3", 8080), "http://10.1.2.3:8080/");
        assert_eq!(
            url(&none, None, "localhost", 8080),
            "http://localhost:8080/"
        );
        assert_eq!(
            url(&none, Some("0.0.0.0:9187"), "10.1.2.3", 8080),
            "http://127.0.0.1:9187/"
        );
        let given = connect(Some("https://agent.example:8443"));
        assert_eq!(
            url(&given, Some("0.0.0.0:9187"), "0.0.0.0", 8080),
            "https://agent.example:8443/"
        );
    }

    #[test]
    fn a_listener_with_tls_is_asked_over_https_and_its_own_certificate_is_known() {
        let tls = || Ok(true);
        let own = base_url(&connect(None), None, tls, api("0.0.0.0", 8443)).unwrap();
        assert_eq!(own.url.as_str(), "https://127.0.0.1:8443/");
        assert!(own.own_tls);
        let given = base_url(&connect(Some("https://a:1")), None, tls, api("0.0.0.0", 1));
        assert!(!given.unwrap().own_tls, "a --url is verified as given");
    }

    #[test]
    fn the_configuration_is_read_only_when_needed() {
        let unreadable = || Err::<ApiSettings, _>("cannot read".to_owned());
        let no_tls = || Ok(false);
        let given = connect(Some("http://a:1"));
        let broken_web = || Err("web configuration has 1 problem(s)".to_owned());
        assert!(base_url(&given, None, broken_web, unreadable).is_ok());
        assert_eq!(
            base_url(&connect(None), None, no_tls, unreadable).unwrap_err(),
            "cannot read"
        );
    }

    #[test]
    fn a_long_body_is_cut_to_one_short_line() {
        assert_eq!(first_line("not ready: 1 of 2\nmore"), "not ready: 1 of 2");
        let long = "x".repeat(500);
        assert_eq!(first_line(&long).len(), 203);
        assert_eq!(first_line(""), "");
    }
}
