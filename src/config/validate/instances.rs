//! Instances, their endpoints, credentials and TLS.

use std::collections::{BTreeMap, BTreeSet};

use super::data_loss::{self, InstanceData};
use crate::config::raw::{RawAuth, RawEndpoint, RawInstance, RawSentinel, RawTls, RawTlsSettings};
use crate::config_kit::ctx::{Ctx, join};
use crate::config_kit::raw::Raw;
use crate::config_kit::secrets;
use crate::model::{
    Datacenter, DatacenterId, Endpoint, EndpointKey, Instance, InstanceId, Secret, SentinelRef, Tls,
};

#[derive(Default, Clone)]
struct Auth {
    username: Option<String>,
    password: Option<Secret>,
    tls: Option<Option<Tls>>,
}

fn auth(cx: &mut Ctx<'_>, path: &str, raw: RawAuth) -> Auth {
    let username = cx.text(&join(path, "username"), raw.username);
    let password = cx.secret(path, "password", raw.password, raw.password_file);
    let tls = cx
        .value(&join(path, "tls"), raw.tls)
        .map(|t| tls(cx, &join(path, "tls"), t));
    Auth {
        username,
        password,
        tls,
    }
}

fn tls(cx: &mut Ctx<'_>, path: &str, raw: RawTls) -> Option<Tls> {
    let settings = match raw {
        RawTls::Enabled(false) => return None,
        RawTls::Enabled(true) => return Some(Tls::default()),
        RawTls::Settings(s) => s,
    };
    cx.unknown(path, &settings.unknown, &[RawTlsSettings::KEYS]);
    if !cx
        .value(&join(path, "enabled"), settings.enabled)
        .unwrap_or(true)
    {
        return None;
    }
    let read = |cx: &mut Ctx<'_>, key: &str, raw: Option<Raw<String>>| {
        let key = join(path, key);
        let file = cx.text(&key, raw)?;
        cx.read_file(&key, &file)
    };
    let ca_cert = read(cx, "ca_file", settings.ca_file);
    let client_cert = read(cx, "cert_file", settings.cert_file);
    let client_key = read(cx, "key_file", settings.key_file)
        .map(|k| Secret::new(String::from_utf8_lossy(&k).into_owned()));
    if client_cert.is_some() != client_key.is_some() {
        cx.problem(
            path,
            "cert_file and key_file go together: give both or neither",
        );
    }
    let insecure_skip_verify = cx
        .value(
            &join(path, "insecure_skip_verify"),
            settings.insecure_skip_verify,
        )
        .unwrap_or(false);
    Some(Tls {
        ca_cert,
        client_cert,
        client_key,
        insecure_skip_verify,
    })
}

pub(super) fn instances(
    cx: &mut Ctx<'_>,
    raw: Option<Raw<Vec<RawInstance>>>,
    datacenters: &Option<BTreeMap<DatacenterId, Datacenter>>,
    promote: &mut BTreeSet<InstanceId>,
    enterprise_databases: &mut BTreeMap<InstanceId, String>,
    data: &mut BTreeMap<InstanceId, InstanceData>,
) -> Vec<Instance> {
    let Some(raw) = cx.required("instances", raw) else {
        return Vec::new();
    };
    if raw.is_empty() {
        cx.problem("instances", "must list at least one instance");
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (i, inst) in raw.into_iter().enumerate() {
        let path = format!("instances[{i}]");
        cx.unknown(&path, &inst.unknown, &[RawInstance::KEYS, RawAuth::KEYS]);
        let uid = cx.required(&join(&path, "uid"), inst.uid);
        let uid = match uid {
            Some(uid) if uid.trim().is_empty() => {
                cx.problem(&join(&path, "uid"), "must not be empty");
                None
            }
            Some(uid) if !seen.insert(uid.clone()) => {
                cx.problem(
                    &join(&path, "uid"),
                    format!("{uid:?} is used by another instance"),
                );
                None
            }
            other => other,
        };
        let name = cx.text(&join(&path, "name"), inst.name);
        let shared = auth(cx, &path, inst.auth);
        let endpoints_path = join(&path, "endpoints");
        let raw_endpoints = cx
            .required(&endpoints_path, inst.endpoints)
            .unwrap_or_default();
        if raw_endpoints.is_empty() {
            cx.problem(
                &endpoints_path,
                "must list at least one datacenter's endpoint",
            );
        }
        // Datacenters as written, valid or not, so one bad endpoint does not also
        // make active_dc look wrong.
        let named: BTreeSet<DatacenterId> = raw_endpoints
            .keys()
            .map(|dc| DatacenterId::new(dc))
            .collect();
        let mut endpoints = BTreeMap::new();
        for (dc, ep) in raw_endpoints {
            let ep_path = join(&endpoints_path, &dc);
            if let Some(known) = datacenters
                && !known.contains_key(&DatacenterId::new(&dc))
            {
                let names: Vec<_> = known.keys().map(|k| k.to_string()).collect();
                cx.problem(
                    &ep_path,
                    format!(
                        "datacenter {dc:?} is not under datacenters ({})",
                        names.join(", ")
                    ),
                );
            }
            if let Some(ep) = endpoint(cx, &ep_path, ep, uid.as_deref().unwrap_or(""), &dc, &shared)
            {
                endpoints.insert(DatacenterId::new(&dc), ep);
            }
        }
        let active_path = join(&path, "active_dc");
        let active_dc = match cx.value(&active_path, inst.active_dc) {
            Some(dc) if named.contains(&DatacenterId::new(&dc)) => Some(DatacenterId::new(&dc)),
            Some(dc) => {
                cx.problem(
                    &active_path,
                    format!("{dc:?} is not one of this instance's endpoints"),
                );
                None
            }
            None if named.len() <= 1 => named.iter().next().cloned(),
            None => {
                cx.problem(
                    &active_path,
                    "is required when an instance has several endpoints",
                );
                None
            }
        };
        let promotes = cx
            .value(
                &join(&path, "promote_on_failover"),
                inst.promote_on_failover,
            )
            .unwrap_or(false);
        let database = cx.text(
            &join(&path, "enterprise_database"),
            inst.enterprise_database,
        );
        let holds = data_loss::instance(cx, &path, inst.data, inst.max_data_loss);
        if let (Some(uid), Some(active_dc)) = (uid, active_dc) {
            if promotes {
                promote.insert(InstanceId::new(&uid));
            }
            if let Some(database) = database {
                enterprise_databases.insert(InstanceId::new(&uid), database.trim().to_owned());
            }
            data.insert(InstanceId::new(&uid), holds);
            out.push(Instance {
                name: name.unwrap_or_else(|| uid.clone()),
                uid: InstanceId::new(&uid),
                endpoints,
                active_dc,
            });
        }
    }
    out
}

fn endpoint(
    cx: &mut Ctx<'_>,
    path: &str,
    raw: RawEndpoint,
    uid: &str,
    dc: &str,
    shared: &Auth,
) -> Option<Endpoint> {
    cx.unknown(path, &raw.unknown, &[RawEndpoint::KEYS, RawAuth::KEYS]);
    let host = cx.required(&join(path, "host"), raw.host);
    let host = host.filter(|h| {
        let ok = !h.trim().is_empty()
            && !h.contains(['/', '@'])
            && !h.contains(|c: char| c.is_whitespace() || c.is_control());
        if !ok {
            // `redis://user:password@host` is not echoed whole.
            cx.problem(
                &join(path, "host"),
                format!(
                    "{:?} is not a host name or address (credentials go in username and \
                     password)",
                    secrets::show_url(h)
                ),
            );
        }
        ok
    });
    let port = match raw.port {
        None => Some(6379),
        some => cx.port(&join(path, "port"), some),
    };
    let own = auth(cx, path, raw.auth);
    let sentinel = sentinel(cx, &join(path, "sentinel"), raw.sentinel);
    Some(Endpoint {
        key: EndpointKey::new(uid, dc),
        host: host?,
        port: port?,
        username: own.username.or_else(|| shared.username.clone()),
        password: own.password.or_else(|| shared.password.clone()),
        tls: own.tls.or_else(|| shared.tls.clone()).flatten(),
        sentinel,
    })
}

fn sentinel(cx: &mut Ctx<'_>, path: &str, raw: Option<Raw<RawSentinel>>) -> Option<SentinelRef> {
    let raw = cx.value(path, raw)?;
    cx.unknown(path, &raw.unknown, &[RawSentinel::KEYS]);
    let master = cx.required(&join(path, "master"), raw.master);
    let given = cx
        .required(&join(path, "addresses"), raw.addresses)
        .unwrap_or_default();
    if given.is_empty() {
        cx.problem(
            &join(path, "addresses"),
            "must list at least one Sentinel (host:port)",
        );
    }
    let mut addresses = Vec::new();
    for (i, a) in given.iter().enumerate() {
        match a
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        {
            Some((host, port)) if !host.is_empty() && !host.contains('@') && port > 0 => {
                addresses.push((host.trim_matches(['[', ']']).to_owned(), port))
            }
            _ => cx.problem(
                &format!("{path}.addresses[{i}]"),
                format!("{:?} is not host:port", secrets::show_url(a)),
            ),
        }
    }
    Some(SentinelRef {
        master: master?,
        addresses,
    })
}
