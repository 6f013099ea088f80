//! Fresh probes for the decision engine: a new connection to one endpoint, PING and
//! INFO, within the collector's timeouts. Separate from the collection loop on purpose:
//! a confirmation must not trust a connection or a snapshot from before the fault.

use std::time::Duration;

use async_trait::async_trait;

use super::info::InfoLimits;
use super::redis::{ReplyCap, connect};
use crate::config::{CollectorSettings, Limits};
use crate::decision::ports::{FreshProbe, Prober};
use crate::model::{CollectError, Endpoint};

/// What the datacenter's Sentinel says about its primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentinelView {
    /// Where the primary is now (it moves when Sentinel promotes a replica).
    pub host: String,
    pub port: u16,
    /// `failover_in_progress` among the flags, or a failover state other than `none`.
    pub failing_over: bool,
    /// `last-ok-ping-reply`, unless the flags say the primary is down (`s_down`,
    /// `o_down`) or Sentinel has no link to it (`disconnected`).
    pub heard: Option<Duration>,
}

/// Reads `SENTINEL MASTER` fields (pure).
pub fn sentinel_view(fields: &[(String, String)]) -> Option<SentinelView> {
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.as_str());
    let flags = get("flags").unwrap_or("");
    let flagged = |names: &[&str]| flags.split(',').any(|f| names.contains(&f));
    let state = get("failover-state").unwrap_or("none");
    let heard = get("last-ok-ping-reply")
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis)
        .filter(|_| !flagged(&["s_down", "o_down", "disconnected"]));
    Some(SentinelView {
        host: get("ip")?.to_owned(),
        port: get("port")?.parse().ok()?,
        failing_over: flagged(&["failover_in_progress"]) || !matches!(state, "none" | ""),
        heard,
    })
}

/// Probes real Redis servers with the configured timeouts and limits.
#[derive(Debug, Clone)]
pub struct RedisProber {
    settings: CollectorSettings,
    limits: Limits,
}

impl RedisProber {
    /// With the default `limits`; see [`RedisProber::with_limits`].
    pub fn new(settings: CollectorSettings) -> Self {
        Self {
            settings,
            limits: Limits::default(),
        }
    }

    /// The configured `limits` (the largest reply, the rows of INFO).
    pub fn with_limits(self, limits: Limits) -> Self {
        Self { limits, ..self }
    }

    fn cap(&self) -> ReplyCap {
        ReplyCap::uncounted(self.limits.max_reply_bytes)
    }
}

#[async_trait]
impl Prober for RedisProber {
    async fn probe(&self, endpoint: &Endpoint) -> FreshProbe {
        let Some(sentinel) = &endpoint.sentinel else {
            return self.probe_at(endpoint).await;
        };
        // Ask the Sentinels where the primary is, as Sentinel-aware clients do, and
        // whether they are moving it.
        let asked = ask_sentinels(endpoint, sentinel, &self.settings, &self.cap()).await;
        let (view, last_error) = match asked {
            Ok(view) => (Some(view), None),
            Err(e) => (None, e),
        };
        let Some(view) = view else {
            // No Sentinel answered: probe the configured address.
            let mut probe = self.probe_at(endpoint).await;
            if let (false, Some(e)) = (probe.up, last_error) {
                probe.error.get_or_insert(e);
            }
            return probe;
        };
        let primary = Endpoint {
            host: view.host.clone(),
            port: view.port,
            sentinel: None,
            ..endpoint.clone()
        };
        let mut probe = self.probe_at(&primary).await;
        probe.sentinel_failover = view.failing_over;
        probe.sentinel_heard = view.heard;
        probe
    }

    async fn promote(&self, endpoint: &Endpoint) -> Result<(), CollectError> {
        connect(endpoint, &self.settings, &self.cap())
            .await?
            .replicaof_no_one()
            .await
    }
}

/// Asks each Sentinel in turn, until one answers, what it knows about the primary.
/// `Err` carries the last failure (`None` when the Sentinels answered but did not know
/// the name).
pub(crate) async fn ask_sentinels(
    endpoint: &Endpoint,
    sentinel: &crate::model::SentinelRef,
    settings: &CollectorSettings,
    cap: &ReplyCap,
) -> Result<SentinelView, Option<CollectError>> {
    let mut last_error = None;
    for (host, port) in &sentinel.addresses {
        let at = Endpoint {
            host: host.clone(),
            port: *port,
            username: None,
            password: None,
            tls: None,
            sentinel: None,
            ..endpoint.clone()
        };
        let asked = match connect(&at, settings, cap).await {
            Ok(mut conn) => conn.sentinel_master(&sentinel.master).await,
            Err(e) => Err(e),
        };
        match asked.map(|fields| sentinel_view(&fields)) {
            Ok(Some(view)) => return Ok(view),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error)
}

/// The endpoint as Sentinel says it is now: its primary's address, or the configured
/// one when no Sentinel answers.
pub(crate) async fn current_primary(
    endpoint: &Endpoint,
    settings: &CollectorSettings,
    cap: &ReplyCap,
) -> Endpoint {
    match &endpoint.sentinel {
        Some(sentinel) => match ask_sentinels(endpoint, sentinel, settings, cap).await {
            Ok(view) => Endpoint {
                host: view.host,
                port: view.port,
                ..endpoint.clone()
            },
            Err(_) => endpoint.clone(),
        },
        None => endpoint.clone(),
    }
}

impl RedisProber {
    /// PING and INFO on a new connection to this address.
    async fn probe_at(&self, endpoint: &Endpoint) -> FreshProbe {
        let mut conn = match connect(endpoint, &self.settings, &self.cap()).await {
            Ok(conn) => conn,
            Err(e) => return FreshProbe::down(e),
        };
        let (latency, reply_error) = match conn.ping().await {
            Ok(answer) => answer,
            Err(e) => return FreshProbe::down(e),
        };
        if let Some(e) = reply_error {
            // LOADING, MASTERDOWN, BUSY: the server answers but cannot serve.
            return FreshProbe {
                ping_latency: Some(latency),
                ..FreshProbe::down(e)
            };
        }
        // The same checks as a collection round: a reply that is not INFO, or is too
        // large, is a protocol error, never an up server.
        match conn.info(&InfoLimits::from_config(&self.limits)).await {
            Ok(info) => FreshProbe {
                up: true,
                ping_latency: Some(latency),
                info: Some(info),
                error: None,
                sentinel_failover: false,
                sentinel_heard: None,
            },
            Err(e) => FreshProbe {
                ping_latency: Some(latency),
                ..FreshProbe::down(e)
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn sentinel_says_where_the_primary_is_and_whether_it_moves_it() {
        let calm = fields(&[
            ("name", "mymaster"),
            ("ip", "10.0.0.5"),
            ("port", "6379"),
            ("flags", "master"),
            ("failover-state", "none"),
            ("last-ok-ping-reply", "412"),
        ]);
        assert_eq!(
            sentinel_view(&calm),
            Some(SentinelView {
                host: "10.0.0.5".into(),
                port: 6379,
                failing_over: false,
                heard: Some(Duration::from_millis(412)),
            })
        );
        let moving = fields(&[
            ("ip", "10.0.0.5"),
            ("port", "6379"),
            ("flags", "s_down,o_down,master,failover_in_progress"),
        ]);
        assert!(sentinel_view(&moving).unwrap().failing_over);
        // A primary Sentinel considers down, or has no link to, was not heard.
        for flags in [
            "s_down,master",
            "o_down,s_down,master",
            "master,disconnected",
        ] {
            let down = fields(&[
                ("ip", "10.0.0.5"),
                ("port", "6379"),
                ("flags", flags),
                ("last-ok-ping-reply", "300"),
            ]);
            assert_eq!(sentinel_view(&down).unwrap().heard, None, "{flags}");
        }
        let electing = fields(&[
            ("ip", "10.0.0.5"),
            ("port", "6379"),
            ("flags", "master"),
            ("failover-state", "wait_start"),
        ]);
        assert!(sentinel_view(&electing).unwrap().failing_over);
        assert_eq!(sentinel_view(&fields(&[("ip", "10.0.0.5")])), None);
    }
}
