//! The agent's configuration in the bed.

use std::path::Path;

use super::super::bind::{Bind, KEY_NAME};
use super::super::e2e::route53_yaml;
use super::super::moto::Moto;
use super::super::openai::ScriptedOpenAi;
use super::super::osmem::Osmem;
use super::super::stack::Alertmanager;
use super::{API_KEY, Dc, Options, Profile, RECORD, host_of};

/// What every agent's configuration names.
pub(super) struct Peers<'a> {
    pub a: &'a Dc,
    pub b: &'a Dc,
    pub moto: &'a Moto,
    pub zone: &'a str,
    pub bind: Option<&'a Bind>,
    pub osmem: &'a Osmem,
    pub alertmanager: &'a Alertmanager,
    pub opts: &'a Options,
    pub profile: &'a Profile,
    pub ai: Option<&'a ScriptedOpenAi>,
}

/// The configuration of `agent`, which reaches Redis through its own paths and keeps
/// its journal in `state`. A fleet's agents know the observer datacenter `c` too (no
/// Redis there: an agent runs in it to witness).
pub(super) fn agent_config(peers: &Peers<'_>, agent: &str, state: &Path) -> String {
    let Peers {
        a,
        b,
        moto,
        zone,
        bind,
        osmem,
        alertmanager,
        opts,
        profile,
        ai,
    } = *peers;
    let datacenters = match opts.fleet {
        true => "{a: {name: a}, b: {name: b}, c: {name: c}}",
        false => "{a: {name: a}, b: {name: b}}",
    };
    let mut y = format!(
        "instances:\n\
         \x20 - uid: app\n\
         \x20   active_dc: a\n\
         \x20   endpoints:\n\
         \x20     a: {ea}\n\
         \x20     b: {eb}\n\
         datacenters: {datacenters}\n\
         timeouts: {{connect: 300ms, command: 300ms}}\n\
         reconnect_max_backoff: 1s\n\
         {profile}\
         auto_failover: true\n\
         sentinel_failover_wait: 15s\n\
         state_dir: {state}\n\
         webhook: {{bearer_token: {token}}}\n\
         api: {{api_key: {API_KEY}}}\n\
         alertmanager: {{urls: ['http://127.0.0.1:{am}']}}\n\
         {dns}",
        ea = a.endpoint_yaml(agent, opts.agent_uses_sentinel),
        eb = b.endpoint_yaml(agent, opts.agent_uses_sentinel),
        profile = profile.agent,
        state = state.display(),
        token = alertmanager.webhook_token,
        am = alertmanager.port,
        dns = match bind {
            Some(bind) => rfc2136_yaml(bind),
            None => route53_yaml(
                zone,
                &moto.url(),
                RECORD,
                5,
                &[("a", &host_of("a")), ("b", &host_of("b"))],
            ),
        },
    );
    if opts.client_impact {
        y.push_str(&format!(
            "use_elk: true\n\
             elk: {{url: '{}', index_pattern: 'client-logs-*', timeout: 3, cache_ttl: 10}}\n",
            osmem.url()
        ));
    }
    if let Some(ai) = ai {
        y.push_str(&format!(
            "use_azure_openai: true\n\
             azure_openai: {{endpoint: '{}', model: failover-advisor, timeout: {}}}\n",
            ai.endpoint(),
            opts.ai_timeout_s
        ));
    }
    y.push_str(&opts.agent_extra);
    y
}

/// `dns_provider: rfc2136` at `bind`, the key's secret from `${TSIG_SECRET}`.
fn rfc2136_yaml(bind: &Bind) -> String {
    format!(
        "dns_provider: rfc2136\n\
         dns_config:\n\
         \x20 server: 127.0.0.1:{port}\n\
         \x20 zone: {zone}\n\
         \x20 tsig: {{name: {KEY_NAME}, secret: '${{TSIG_SECRET}}'}}\n\
         \x20 records:\n\
         \x20   - {{instance_name: app, name: {RECORD}, type: CNAME, ttl: 5,\n\
         \x20       values: {{a: {a}, b: {b}}}}}\n",
        port = bind.port,
        zone = bind.zone,
        a = host_of("a"),
        b = host_of("b"),
    )
}
