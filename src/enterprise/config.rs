//! The Redis Enterprise REST API: `datacenters.<dc>.api_*` (where each cluster's API is
//! and how to log in), `enterprise` (how often and how patiently it is read) and
//! `instances[].enterprise_database` (which database serves an instance); read and
//! checked here, used by the collector beside it.

use std::collections::BTreeMap;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Deserialize;
use serde_yaml::Value;

use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::duration::{Seconds, show};
#[cfg(test)]
use crate::config_kit::raw::KeyBlock;
use crate::config_kit::raw::{Raw, Unknown};
use crate::model::{Datacenter, DatacenterId, Instance, InstanceId, Secret};

/// `enterprise`'s keys (see [`KeyBlock`]).
#[cfg(test)]
pub(crate) const KEY_BLOCKS: &[KeyBlock] =
    &[KeyBlock::new("", "RawEnterprise", RawEnterprise::KEYS)];

/// The keys this module reads inside the core's blocks: a datacenter's API.
#[cfg(test)]
pub(crate) const CORE_KEY_BLOCKS: &[KeyBlock] = &[KeyBlock::new(
    "datacenters.<dc>",
    "RawClusterApi",
    RawClusterApi::KEYS,
)];

/// The REST statistics have a one-minute granularity: reading them faster only loads
/// the cluster's API.
pub const fn default_poll_interval() -> Duration {
    Duration::from_secs(60)
}
/// Below this, a poll would mostly re-read the same minute.
pub const MIN_POLL_INTERVAL: Duration = Duration::from_secs(10);
pub const fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Every datacenter's cluster API and how it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct EnterpriseSettings {
    /// `enterprise.poll_interval`: time between two polls of one cluster. Default 60 s,
    /// at least 10 s.
    pub poll_interval: Duration,
    /// `enterprise.timeout`: the most one request may take. Default 10 s.
    pub timeout: Duration,
    /// The datacenters with an `api_url`.
    pub clusters: BTreeMap<DatacenterId, ClusterApi>,
    /// Per instance, the names its database may have, in the order they are tried:
    /// `enterprise_database` when given, else the instance's `uid`, then its `name`.
    pub databases: BTreeMap<InstanceId, Vec<String>>,
}

impl Default for EnterpriseSettings {
    fn default() -> Self {
        Self {
            poll_interval: default_poll_interval(),
            timeout: default_timeout(),
            clusters: BTreeMap::new(),
            databases: BTreeMap::new(),
        }
    }
}

/// One datacenter's cluster API (`datacenters.<dc>.api_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterApi {
    /// `datacenters.<dc>.name`: a participating cluster of that name is this datacenter's.
    pub datacenter_name: String,
    /// `api_url`: `https://cluster.example:9443`, without credentials.
    pub url: String,
    /// `api_user`, for HTTP basic authentication.
    pub user: String,
    /// `api_password` or `api_password_file`.
    pub password: Secret,
    /// `api_ca_file`, read: the PEM authorities to trust instead of the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// `api_insecure_skip_verify`: accept any certificate. Default false.
    pub insecure_skip_verify: bool,
}

/// The serde form of `enterprise`.
#[derive(Debug, Deserialize)]
struct RawEnterprise {
    poll_interval: Option<Raw<Seconds>>,
    timeout: Option<Raw<Seconds>>,
    #[serde(flatten)]
    unknown: Unknown,
}

impl RawEnterprise {
    const KEYS: &'static [&'static str] = &["poll_interval", "timeout"];
}

/// A datacenter's API keys, flattened into the core's `datacenters.<dc>` form.
#[derive(Debug, Default, Deserialize)]
pub struct RawClusterApi {
    api_url: Option<Raw<String>>,
    api_user: Option<Raw<String>>,
    api_password: Option<Raw<String>>,
    api_password_file: Option<Raw<String>>,
    api_ca_file: Option<Raw<String>>,
    api_insecure_skip_verify: Option<Raw<bool>>,
}

impl RawClusterApi {
    pub const KEYS: &'static [&'static str] = &[
        "api_url",
        "api_user",
        "api_password",
        "api_password_file",
        "api_ca_file",
        "api_insecure_skip_verify",
    ];

    fn is_empty(&self) -> bool {
        self.api_url.is_none()
            && self.api_user.is_none()
            && self.api_password.is_none()
            && self.api_password_file.is_none()
            && self.api_ca_file.is_none()
            && self.api_insecure_skip_verify.is_none()
    }
}

/// What the core hands over: the `enterprise` block, each datacenter's API keys and
/// each instance's `enterprise_database`, as given.
#[derive(Debug, Default)]
pub struct RawParts {
    pub block: Option<Value>,
    pub clusters: Vec<(DatacenterId, RawClusterApi)>,
    pub databases: BTreeMap<InstanceId, String>,
}

/// Reads and checks everything the collector needs; problems are recorded in `cx`.
pub(crate) fn read(
    cx: &mut Ctx<'_>,
    raw: RawParts,
    datacenters: &BTreeMap<DatacenterId, Datacenter>,
    instances: &[Instance],
) -> EnterpriseSettings {
    let mut settings = EnterpriseSettings::default();
    if let Some(block) = cx.value(
        "enterprise",
        raw.block.map(Raw::<RawEnterprise>::from_value),
    ) {
        cx.unknown("enterprise", &block.unknown, &[RawEnterprise::KEYS]);
        let key = "enterprise.poll_interval";
        match cx.value(key, block.poll_interval) {
            Some(Seconds(d)) if d >= MIN_POLL_INTERVAL => settings.poll_interval = d,
            Some(Seconds(d)) => cx.problem(
                key,
                format!(
                    "{} is too often: the REST API's statistics change once a minute; use {} \
                     or more (default {})",
                    show(d),
                    show(MIN_POLL_INTERVAL),
                    show(default_poll_interval())
                ),
            ),
            None => {}
        }
        settings.timeout = cx.positive("enterprise.timeout", block.timeout, settings.timeout);
        if settings.timeout > settings.poll_interval {
            cx.problem(
                "enterprise.timeout",
                format!(
                    "{} is longer than enterprise.poll_interval ({})",
                    show(settings.timeout),
                    show(settings.poll_interval)
                ),
            );
        }
    }
    for (id, api) in raw.clusters {
        let name = datacenters
            .get(&id)
            .map_or_else(|| id.to_string(), |d| d.name.clone());
        if let Some(api) = cluster_api(cx, &format!("datacenters.{id}"), api, name) {
            settings.clusters.insert(id, api);
        }
    }
    for instance in instances {
        let mut names = Vec::new();
        if let Some(given) = raw.databases.get(&instance.uid) {
            names.push(given.clone());
        }
        names.push(instance.uid.to_string());
        if !instance.name.is_empty() && !names.contains(&instance.name) {
            names.push(instance.name.clone());
        }
        settings.databases.insert(instance.uid.clone(), names);
    }
    settings
}

/// One datacenter's API; `None` without `api_url` or with problems.
fn cluster_api(
    cx: &mut Ctx<'_>,
    path: &str,
    raw: RawClusterApi,
    datacenter_name: String,
) -> Option<ClusterApi> {
    if raw.is_empty() {
        return None;
    }
    let given_url = raw.api_url.is_some();
    let url = cx.url(&join(path, "api_url"), raw.api_url);
    let user = cx.text(&join(path, "api_user"), raw.api_user);
    let password = cx.secret(
        path,
        "api_password",
        raw.api_password,
        raw.api_password_file,
    );
    let ca_file = cx.text(&join(path, "api_ca_file"), raw.api_ca_file);
    let insecure = cx
        .value(
            &join(path, "api_insecure_skip_verify"),
            raw.api_insecure_skip_verify,
        )
        .unwrap_or(false);
    if !given_url {
        cx.problem(
            &join(path, "api_url"),
            "is required when another api_* key of the datacenter is set",
        );
        return None;
    }
    if user.is_none() {
        cx.problem(
            &join(path, "api_user"),
            "is required with api_url: the REST API needs basic authentication",
        );
    }
    if password.is_none() {
        cx.problem(
            &join(path, "api_password"),
            "is required with api_url (or api_password_file)",
        );
    }
    let ca_pem = ca_file.and_then(|file| {
        let key = join(path, "api_ca_file");
        let pem = cx.read_file(&key, &file)?;
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .filter(Result::is_ok)
            .count();
        if certificates == 0 {
            cx.problem(&key, format!("{file:?} holds no PEM certificate"));
            return None;
        }
        Some(pem)
    });
    if insecure {
        cx.warnings.push(format!(
            "{path}.api_insecure_skip_verify: the cluster's certificate is not checked; \
             anyone on the path can read the API password. Use api_ca_file instead"
        ));
    }
    let url = url?;
    if url.starts_with("http://") {
        cx.warnings.push(format!(
            "{path}.api_url: http:// sends the API password in clear; use https://"
        ));
    }
    Some(ClusterApi {
        datacenter_name,
        url: url.trim_end_matches('/').to_owned(),
        user: user?,
        password: password?,
        ca_pem,
        insecure_skip_verify: insecure,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{ConfigError, Loaded, parse};
    use crate::model::{DatacenterId, InstanceId};

    fn load(extra: &str, dc_east: &str) -> Result<Loaded, String> {
        let text = format!(
            "instances:\n  - {{uid: cache, name: cache-service, active_dc: east,\n     \
             endpoints: {{east: {{host: e.example}}, west: {{host: w.example}}}}}}\n\
             datacenters:\n  east: {{name: US-EAST, {dc_east}}}\n  west: {{}}\n{extra}"
        );
        let env = |k: &str| (k == "RE_PW").then(|| "pw-from-env".to_owned());
        match parse(&text, "test", Path::new("."), &env) {
            Ok(loaded) => Ok(loaded),
            Err(ConfigError::Invalid { problems, .. }) => Err(problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")),
            Err(e) => panic!("{e}"),
        }
    }

    const API: &str = "api_url: 'https://cluster1.example:9443/', api_user: admin@example.com, \
                       api_password: '${RE_PW}'";

    #[test]
    fn the_seed_keys_are_read_with_the_defaults() {
        let loaded = load("", API).unwrap();
        let e = &loaded.config.enterprise;
        assert_eq!(e.poll_interval, Duration::from_secs(60));
        assert_eq!(e.timeout, Duration::from_secs(10));
        let api = &e.clusters[&DatacenterId::new("east")];
        assert_eq!(api.url, "https://cluster1.example:9443");
        assert_eq!(api.user, "admin@example.com");
        assert_eq!(api.password.expose(), "pw-from-env");
        assert_eq!(api.datacenter_name, "US-EAST");
        assert!(!e.clusters.contains_key(&DatacenterId::new("west")));
        assert_eq!(
            e.databases[&InstanceId::new("cache")],
            ["cache", "cache-service"]
        );
        assert!(
            loaded.warnings.iter().all(|w| !w.contains("ignored")),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn a_database_is_named_and_the_schedule_set() {
        let text = "enterprise: {poll_interval: 30s, timeout: 5s}\n";
        let loaded = load(text, &format!("{API}, api_insecure_skip_verify: true")).unwrap();
        let e = &loaded.config.enterprise;
        assert_eq!(e.poll_interval, Duration::from_secs(30));
        assert_eq!(e.timeout, Duration::from_secs(5));
        assert!(e.clusters[&DatacenterId::new("east")].insecure_skip_verify);
        let warned = loaded.warnings.join("\n");
        assert!(
            warned.contains("datacenters.east.api_insecure_skip_verify"),
            "{warned}"
        );
    }

    #[test]
    fn every_problem_is_named_without_the_password() {
        let problems = load(
            "enterprise: {poll_interval: 5s, timout: 1s}\n",
            "api_url: 'https://admin:hunter2@cluster1:9443', api_ca_file: /nonexistent/ca.pem",
        )
        .unwrap_err();
        for expected in [
            "enterprise.poll_interval: 5 s is too often",
            "enterprise.timout: unknown key (did you mean `timeout`?)",
            "datacenters.east.api_url: \"https://***@cluster1:9443\" must not contain credentials",
            "datacenters.east.api_user: is required with api_url",
            "datacenters.east.api_password: is required with api_url",
            "datacenters.east.api_ca_file: cannot read",
        ] {
            assert!(problems.contains(expected), "{expected}\n{problems}");
        }
        assert!(!problems.contains("hunter2"), "{problems}");
        let problems = load("", "api_user: admin, api_pasword: x").unwrap_err();
        assert!(
            problems.contains("datacenters.east.api_pasword: unknown key"),
            "{problems}"
        );
        assert!(
            problems.contains("datacenters.east.api_url: is required"),
            "{problems}"
        );
    }
}
