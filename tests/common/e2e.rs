//! The two-datacenter bed of the end-to-end tests: real redis-servers as east and west,
//! `moto_server` as Route53 with the instance's CNAME pointing at east, a receiver
//! standing in for Alertmanager's API, and helpers to deliver Alertmanager's webhook and
//! read the agent's journal.

use std::path::Path;

use serde_json::Value as Json;

use super::Redis;
use super::moto::{ACCESS_KEY, Moto, SECRET_KEY, listing, zone_with};
use super::stack::Receiver;

pub const TOKEN: &str = "e2e-webhook-token-0123456789abcdef";
pub const API_KEY: &str = "e2e-operator-api-key-0123456789";
pub const RECORD: &str = "redis.example.com";
pub const EAST: &str = "redis-east.example.com";
pub const WEST: &str = "redis-west.example.com";

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub struct Bed {
    pub east: Redis,
    pub west: Redis,
    pub moto: Moto,
    pub zone: String,
    pub receiver: Receiver,
}

impl Bed {
    pub fn start() -> Bed {
        let east = Redis::start(&[]);
        let west = Redis::start(&[]);
        let moto = Moto::start();
        let zone = runtime().block_on(zone_with(&moto, &[(RECORD, EAST)]));
        Bed {
            east,
            west,
            moto,
            zone,
            receiver: Receiver::start(),
        }
    }

    /// The agent's configuration: the instance `app` in east (active) and west, its
    /// CNAME in moto, the receiver as Alertmanager, and `extra` appended.
    pub fn config(&self, state_dir: &Path) -> String {
        self.config_with(state_dir, "")
    }

    pub fn config_with(&self, state_dir: &Path, extra: &str) -> String {
        super::config(
            &[("app", &[("east", self.east.port), ("west", self.west.port)])],
            &(format!(
                "auto_failover: true\n\
                 failover_consecutive_threshold: 2\n\
                 confirm_interval: 200ms\n\
                 state_dir: {state}\n\
                 webhook: {{bearer_token: {TOKEN}}}\n\
                 api: {{api_key: {API_KEY}}}\n\
                 alertmanager: {{urls: ['{am}']}}\n\
                 {dns}",
                state = state_dir.display(),
                am = self.receiver.url(""),
                dns = route53_yaml(
                    &self.zone,
                    &self.moto.url(),
                    RECORD,
                    60,
                    &[("east", EAST), ("west", WEST)]
                ),
            ) + extra),
        )
    }

    /// Where the record points, as moto holds it.
    pub fn pointing_at(&self) -> String {
        let all = runtime().block_on(listing(&self.moto, &self.zone));
        all.into_iter()
            .find(|(name, kind, _)| name.trim_end_matches('.') == RECORD && kind == "CNAME")
            .map(|(_, _, values)| values.join(","))
            .unwrap_or_default()
    }
}

/// Alertmanager's delivery for `app` in `east`, `status` firing or resolved.
pub fn payload(status: &str) -> String {
    payload_in(status, "east")
}

/// Alertmanager's delivery for `app` in datacenter `dc`, `status` firing or resolved.
pub fn payload_in(status: &str, dc: &str) -> String {
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/alertmanager/firing-instance.json"
    ))
    .unwrap();
    let mut p: Json = serde_json::from_str(&fixture).unwrap();
    p["status"] = status.into();
    for a in p["alerts"].as_array_mut().unwrap() {
        a["labels"]["redis_instance"] = "app".into();
        a["labels"]["datacenter"] = dc.into();
        a["status"] = status.into();
    }
    p.to_string()
}

pub fn post(port: u16, body: &str, token: &str) -> (u16, String) {
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    super::http_request(
        port,
        "POST",
        "/webhook/alertmanager",
        &headers,
        body.as_bytes(),
    )
    .expect("the agent answers")
}

/// The journal's records, in order.
pub fn journal(state_dir: &Path) -> Vec<Json> {
    std::fs::read_to_string(state_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .filter(|e| !e["record"].is_null())
        .map(|e| e["record"].clone())
        .collect()
}

/// The steps of every incident, in order: (name, detail).
pub fn steps(records: &[Json]) -> Vec<(String, String)> {
    records
        .iter()
        .filter(|r| r["type"] == "step")
        .map(|r| {
            (
                r["step"]["name"].as_str().unwrap_or("").to_owned(),
                r["step"]["detail"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The agent's `dns_provider: route53` block for one CNAME of instance `app` in moto,
/// with its value per datacenter.
pub fn route53_yaml(
    zone: &str,
    moto_url: &str,
    name: &str,
    ttl: u32,
    values: &[(&str, &str)],
) -> String {
    let values: Vec<String> = values.iter().map(|(dc, v)| format!("{dc}: {v}")).collect();
    format!(
        "dns_provider: route53\n\
         dns_config:\n\
         \x20 zone_id: '{zone}'\n\
         \x20 aws_access_key: {ACCESS_KEY}\n\
         \x20 aws_secret_key: {SECRET_KEY}\n\
         \x20 endpoint_url: {moto_url}\n\
         \x20 records:\n\
         \x20   - {{instance_name: app, name: {name}, type: CNAME, ttl: {ttl},\n\
         \x20       values: {{{}}}}}\n",
        values.join(", ")
    )
}

pub fn count(records: &[Json], kind: &str) -> usize {
    records.iter().filter(|r| r["type"] == kind).count()
}

pub fn closed_outcomes(records: &[Json]) -> Vec<String> {
    records
        .iter()
        .filter(|r| r["type"] == "closed")
        .map(|r| r["outcome"]["outcome"].as_str().unwrap_or("").to_owned())
        .collect()
}
