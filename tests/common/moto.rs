//! `moto_server` as Route53, for the DNS tests and the end-to-end failover tests.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_sdk_route53::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType,
};

use super::{free_port, http_get, wait_for};

pub const ACCESS_KEY: &str = "AKIATESTEXAMPLE0001";
pub const SECRET_KEY: &str = "test-secret-key-never-printed";

/// `moto_server` on a free loopback port, killed by PID when dropped.
pub struct Moto {
    pub port: u16,
    child: Child,
}

impl Moto {
    pub fn start() -> Moto {
        let program = require_moto();
        let port = free_port();
        let child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let moto = Moto { port, child };
        wait_for(Duration::from_secs(30), "moto_server to answer", || {
            http_get(port, "/moto-api/").ok().filter(|(s, _)| *s == 200)
        });
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn require_moto() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("moto_server"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`moto_server` is not installed; this test needs it. Install it with \
                 `python3 -m pip install 'moto[server]==5.2.1'` (scripts/test.sh does this)"
            )
        })
}

/// An SDK client straight to moto, to set up zones and to look behind our provider.
pub fn sdk(url: &str) -> aws_sdk_route53::Client {
    let config = aws_sdk_route53::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "test"))
        .endpoint_url(url)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    aws_sdk_route53::Client::from_conf(config)
}

pub fn cname(name: &str, host: &str) -> Change {
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(host).build().unwrap())
        .build()
        .unwrap();
    Change::builder()
        .action(ChangeAction::Create)
        .resource_record_set(set)
        .build()
        .unwrap()
}

/// A zone `example.com` holding these CNAMEs; returns its id.
pub async fn zone_with(moto: &Moto, records: &[(&str, &str)]) -> String {
    let client = sdk(&moto.url());
    let zone = client
        .create_hosted_zone()
        .name("example.com")
        .caller_reference(format!("test-{}-{}", std::process::id(), moto.port))
        .send()
        .await
        .expect("create the hosted zone");
    let id = zone.hosted_zone().unwrap().id().to_owned();
    let mut batch = ChangeBatch::builder();
    for (name, host) in records {
        batch = batch.changes(cname(name, host));
    }
    client
        .change_resource_record_sets()
        .hosted_zone_id(&id)
        .change_batch(batch.build().unwrap())
        .send()
        .await
        .expect("create the records");
    id
}

/// Every record in the zone, as moto holds it: (name, type, values).
pub async fn listing(moto: &Moto, zone_id: &str) -> Vec<(String, String, Vec<String>)> {
    let out = sdk(&moto.url())
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .map(|s| {
            let values = s.resource_records().iter().map(|r| r.value().to_owned());
            (
                s.name().to_owned(),
                s.r#type().as_str().to_owned(),
                values.collect(),
            )
        })
        .collect()
}
