use std::collections::BTreeSet;
use std::path::Path;

use super::*;
use crate::config_kit::ctx::Problem;

struct Read {
    settings: Option<CoordinationSettings>,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

impl Read {
    /// The problems as `key: message` lines.
    fn problems(&self) -> Vec<String> {
        self.problems.iter().map(ToString::to_string).collect()
    }

    fn only_problem(&self) -> String {
        assert_eq!(self.problems.len(), 1, "{:?}", self.problems());
        assert!(self.settings.is_none());
        self.problems[0].to_string()
    }
}

fn read_in(dir: &Path, yaml: &str, host: Option<&str>, from_env: &[&str]) -> Read {
    let block: Value = serde_yaml::from_str(yaml).expect("test YAML");
    let from_env: BTreeSet<String> = from_env.iter().map(|s| s.to_string()).collect();
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let mut cx = Ctx {
        base_dir: dir,
        problems: &mut problems,
        warnings: &mut warnings,
        from_env: &from_env,
    };
    let datacenters = ["a".to_owned(), "b".to_owned()];
    let settings = super::read(&mut cx, Some(block), host.map(Into::into), &datacenters);
    Read {
        settings,
        problems,
        warnings,
    }
}

fn read_yaml(yaml: &str) -> Read {
    read_in(Path::new("/nonexistent"), yaml, Some("host-1"), &[])
}

const MINIMAL: &str = "etcd: { endpoints: [http://127.0.0.1:2379] }";

#[test]
fn endpoints_alone_take_every_default() {
    let read = read_yaml(MINIMAL);
    assert!(read.problems.is_empty(), "{:?}", read.problems());
    let settings = read.settings.unwrap();
    assert_eq!(
        settings,
        CoordinationSettings {
            etcd: EtcdSettings {
                endpoints: vec!["http://127.0.0.1:2379".into()],
                prefix: DEFAULT_PREFIX.into(),
                lease_ttl: Duration::from_secs(10),
                auth: None,
                tls: None,
            },
            agent: AgentSettings {
                name: "host-1".into(),
                datacenter: None,
            },
            agents: Vec::new(),
            quorum: None,
        }
    );
}

#[test]
fn the_issue_example_reads_with_its_secret_hidden() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(dir.path().join(file), format!("PEM {file}")).unwrap();
    }
    let yaml = "
etcd:
  endpoints: [http://10.0.0.1:2379, http://10.0.1.1:2379/, https://10.0.2.1:2379]
  prefix: /redis-failover-agent/prod
  lease_ttl: 5s
  username: agent
  password: s3cret-from-env
  tls: { ca_file: ca.pem, cert_file: cert.pem, key_file: key.pem }
agent:
  name: agent-a
  datacenter: a
";
    let read = read_in(dir.path(), yaml, None, &["coordination.etcd.password"]);
    assert!(read.problems.is_empty(), "{:?}", read.problems());
    assert!(read.warnings.is_empty(), "{:?}", read.warnings);
    let settings = read.settings.unwrap();
    let etcd = &settings.etcd;
    assert_eq!(etcd.endpoints[1], "http://10.0.1.1:2379");
    assert_eq!(etcd.prefix, "/redis-failover-agent/prod");
    assert_eq!(etcd.lease_ttl, Duration::from_secs(5));
    let auth = etcd.auth.as_ref().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.password.expose()),
        ("agent", "s3cret-from-env")
    );
    let tls = etcd.tls.as_ref().unwrap();
    assert_eq!(tls.ca_cert.as_deref(), Some(&b"PEM ca.pem"[..]));
    assert_eq!(tls.client_key.as_ref().unwrap().expose(), "PEM key.pem");
    assert_eq!(settings.agent.name, "agent-a");
    assert_eq!(settings.agent.datacenter.as_deref(), Some("a"));
    let debug = format!("{settings:?}");
    assert!(!debug.contains("s3cret"), "{debug}");
    assert!(!debug.contains("PEM key.pem"), "{debug}");
}

#[test]
fn a_password_from_a_file_and_one_written_inline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("etcd-password"), "from-file\n").unwrap();
    let yaml = "etcd: { endpoints: [http://e:2379], username: agent, \
                password_file: etcd-password }";
    let read = read_in(dir.path(), yaml, Some("h"), &[]);
    let auth = read.settings.unwrap().etcd.auth.unwrap();
    assert_eq!(auth.password.expose(), "from-file");

    let read = read_yaml("etcd: { endpoints: [http://e:2379], username: agent, password: x }");
    assert!(read.settings.is_some());
    assert_eq!(
        read.warnings,
        [
            "coordination.etcd.password: a secret is written in the configuration file; use \
          ${VARIABLE} or password_file instead"
        ]
    );
}

#[test]
fn the_etcd_block_is_required() {
    let read = read_yaml("agent: { name: a }");
    assert_eq!(read.only_problem(), "coordination.etcd: is required");
}

#[test]
fn endpoints_are_required_and_not_empty() {
    let read = read_yaml("etcd: { prefix: /x }");
    assert_eq!(
        read.only_problem(),
        "coordination.etcd.endpoints: is required"
    );
    let read = read_yaml("etcd: { endpoints: [] }");
    assert_eq!(
        read.only_problem(),
        "coordination.etcd.endpoints: must list at least one etcd member's client URL"
    );
}

#[test]
fn an_endpoint_is_an_http_url_without_credentials() {
    let read = read_yaml("etcd: { endpoints: [http://e1:2379, 'http://root:hunter2@e2:2379'] }");
    let problem = read.only_problem();
    assert!(
        problem.starts_with("coordination.etcd.endpoints[1]: ")
            && problem.contains("must not contain credentials"),
        "{problem}"
    );
    assert!(!problem.contains("hunter2"), "{problem}");

    let read = read_yaml("etcd: { endpoints: [unix:///run/etcd.sock] }");
    assert!(
        read.only_problem().starts_with(
            "coordination.etcd.endpoints[0]: \"unix:///run/etcd.sock\" is not an http"
        )
    );
}

#[test]
fn the_prefix_is_absolute_without_a_trailing_slash() {
    for bad in ["fleet", "/fleet/", "/", "/a//b", "'/a b'"] {
        let read = read_yaml(&format!(
            "etcd: {{ endpoints: [http://e:2379], prefix: {bad} }}"
        ));
        let problem = read.only_problem();
        assert!(
            problem.starts_with("coordination.etcd.prefix: ")
                && problem.contains("is not an absolute key prefix"),
            "{bad}: {problem}"
        );
    }
}

#[test]
fn the_lease_ttl_is_whole_seconds_within_bounds() {
    let cases = [
        (
            "1s",
            "coordination.etcd.lease_ttl: 1 s is outside 2 s to 300 s",
        ),
        (
            "10m",
            "coordination.etcd.lease_ttl: 600 s is outside 2 s to 300 s",
        ),
        (
            "2500ms",
            "coordination.etcd.lease_ttl: 2.5 s is not a whole number of seconds (etcd \
             leases count whole seconds)",
        ),
    ];
    for (given, expected) in cases {
        let read = read_yaml(&format!(
            "etcd: {{ endpoints: [http://e:2379], lease_ttl: {given} }}"
        ));
        assert_eq!(read.only_problem(), expected, "{given}");
    }
    let read = read_yaml("etcd: { endpoints: [http://e:2379], lease_ttl: soon }");
    assert!(
        read.only_problem()
            .starts_with("coordination.etcd.lease_ttl: \"soon\" is not valid")
    );
}

#[test]
fn username_and_password_go_together() {
    let read = read_yaml("etcd: { endpoints: [http://e:2379], username: agent }");
    assert_eq!(
        read.only_problem(),
        "coordination.etcd.password: is required with username (or give password_file)"
    );
    let read = read_yaml("etcd: { endpoints: [http://e:2379], password: hunter2 }");
    let problem = read.only_problem();
    assert_eq!(
        problem,
        "coordination.etcd.username: is required with a password"
    );
    let read = read_yaml(
        "etcd: { endpoints: [http://e:2379], username: u, password: hunter2, \
         password_file: p }",
    );
    let problem = read.only_problem();
    assert_eq!(
        problem,
        "coordination.etcd.password: give password or password_file, not both"
    );
    let read = read_yaml("etcd: { endpoints: [http://e:2379], username: u, password: [hunter2] }");
    let problem = read.only_problem();
    assert!(!problem.contains("hunter2"), "{problem}");
}

#[test]
fn tls_files_are_read_and_a_certificate_needs_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cert.pem"), "PEM").unwrap();
    let yaml = "etcd: { endpoints: [https://e:2379], tls: { cert_file: cert.pem } }";
    let read = read_in(dir.path(), yaml, Some("h"), &[]);
    assert_eq!(
        read.problems(),
        ["coordination.etcd.tls: cert_file and key_file go together: give both or neither"]
    );
    let yaml = "etcd: { endpoints: [https://e:2379], tls: { ca_file: missing.pem } }";
    let problem = read_in(dir.path(), yaml, Some("h"), &[]).problems();
    assert!(
        problem.len() == 1 && problem[0].starts_with("coordination.etcd.tls.ca_file: cannot read"),
        "{problem:?}"
    );
}

#[test]
fn an_https_endpoint_needs_the_authority_to_trust() {
    // No system roots are loaded: without `ca_file` no https:// member could be reached.
    let read = read_in(
        Path::new("/"),
        "etcd: { endpoints: [https://e:2379] }",
        Some("h"),
        &[],
    );
    assert_eq!(
        read.only_problem(),
        "coordination.etcd.tls.ca_file: an https:// endpoint needs the authority that \
         signed etcd's certificate: the agent trusts no other (it loads no system roots)"
    );
    let read = read_in(
        Path::new("/"),
        "etcd: { endpoints: [http://e:2379] }",
        Some("h"),
        &[],
    );
    assert!(read.problems.is_empty(), "{:?}", read.problems());
}

#[test]
fn the_agent_name_defaults_to_the_host_name_and_is_checked() {
    let read = read_in(Path::new("/"), MINIMAL, None, &[]);
    assert_eq!(
        read.only_problem(),
        "coordination.agent.name: is required: the host name could not be read to name \
         this agent"
    );
    let read = read_in(Path::new("/"), MINIMAL, Some("bad host"), &[]);
    assert!(
        read.only_problem()
            .starts_with("coordination.agent.name: \"bad host\" is not a valid agent name")
    );
    let yaml = "etcd: { endpoints: [http://e:2379] }\nagent: { name: 'a/b' }";
    assert!(
        read_yaml(yaml)
            .only_problem()
            .starts_with("coordination.agent.name: \"a/b\" is not a valid agent name")
    );
}

#[test]
fn the_agent_datacenter_is_a_configured_one() {
    let yaml = "etcd: { endpoints: [http://e:2379] }\nagent: { datacenter: c }";
    assert_eq!(
        read_yaml(yaml).only_problem(),
        "coordination.agent.datacenter: \"c\" is not a configured datacenter (datacenters: a, b)"
    );
    let yaml = "etcd: { endpoints: [http://e:2379] }\nagent: { datacenter: b }";
    let settings = read_yaml(yaml).settings.unwrap();
    assert_eq!(settings.agent.name, "host-1");
    assert_eq!(settings.agent.datacenter.as_deref(), Some("b"));
}

#[test]
fn a_misspelled_key_is_refused_with_a_hint() {
    let read = read_yaml("etcd: { endpoints: [http://e:2379], lease_tll: 5s }");
    assert_eq!(
        read.problems(),
        ["coordination.etcd.lease_tll: unknown key (did you mean `lease_ttl`?)"]
    );
    let read = read_yaml("etcd: { endpoints: [http://e:2379] }\nagnet: {}");
    assert_eq!(
        read.problems(),
        ["coordination.agnet: unknown key (did you mean `agent`?)"]
    );
}

const FLEET: &str =
    "etcd: { endpoints: [http://e:2379] }\nagent: { name: agent-a, datacenter: a }\n";

#[test]
fn the_configured_agents_and_the_quorum_are_read() {
    let yaml = format!(
        "{FLEET}agents:\n  - {{ name: agent-a, datacenter: a }}\n  - {{ name: agent-b, datacenter: b }}\n  - {{ name: agent-c }}\nquorum: 2\n"
    );
    let read = read_yaml(&yaml);
    assert!(read.problems.is_empty(), "{:?}", read.problems());
    let settings = read.settings.unwrap();
    let agent = |name: &str, dc: Option<&str>| FleetAgent {
        name: name.into(),
        datacenter: dc.map(Into::into),
    };
    assert_eq!(
        settings.agents,
        [
            agent("agent-a", Some("a")),
            agent("agent-b", Some("b")),
            agent("agent-c", None)
        ]
    );
    assert_eq!(settings.quorum, Some(2));
    // Both are optional.
    let settings = read_yaml(FLEET).settings.unwrap();
    assert!(settings.agents.is_empty() && settings.quorum.is_none());
}

#[test]
fn every_problem_of_the_configured_agents_is_named() {
    let yaml = format!(
        "{FLEET}agents:\n  - {{ name: agent-a, datacenter: b }}\n  - {{ name: 'agent b', datacenter: c }}\n  - {{ datacenter: a }}\n  - {{ name: agent-a }}\n  - {{ name: agent-d, dc: a }}\n"
    );
    assert_eq!(
        read_yaml(&yaml).problems(),
        [
            "coordination.agents[1].name: \"agent b\" is not a valid agent name: use up to 63 \
             letters, digits, `.`, `_` or `-`",
            "coordination.agents[1].datacenter: \"c\" is not a configured datacenter \
             (datacenters: a, b); leave it out for an agent at a witness site",
            "coordination.agents[2].name: is required",
            "coordination.agents[3].name: \"agent-a\" is listed twice (also coordination.agents[0])",
            "coordination.agents[4].dc: unknown key",
        ]
    );
    // Once the list itself is well formed, this agent must be in it, where it says it is.
    let yaml = format!("{FLEET}agents: [{{ name: agent-a, datacenter: b }}, {{ name: agent-b }}]");
    assert_eq!(
        read_yaml(&yaml).only_problem(),
        "coordination.agents[0].datacenter: \"b\" differs from coordination.agent.datacenter, \
         \"a\", for this agent"
    );
    let yaml = format!("{FLEET}agents: [{{ name: agent-b }}]");
    assert_eq!(
        read_yaml(&yaml).only_problem(),
        "coordination.agents: this agent, \"agent-a\" (coordination.agent.name), is not \
         listed; the list names every agent of the fleet, this one included"
    );
    let yaml = format!("{FLEET}agents: []");
    assert!(
        read_yaml(&yaml)
            .only_problem()
            .starts_with("coordination.agents: must list at least one agent")
    );
    let yaml = format!("{FLEET}agents: agent-a");
    assert!(
        read_yaml(&yaml)
            .only_problem()
            .starts_with("coordination.agents: \"agent-a\" is not valid")
    );
}

#[test]
fn the_quorum_is_a_number_of_the_configured_agents_outside_a_datacenter() {
    let three = "agents: [{ name: agent-a, datacenter: a }, { name: agent-b, datacenter: b }, \
                 { name: agent-c }]";
    let problem = |tail: &str| read_yaml(&format!("{FLEET}{tail}")).only_problem();
    assert_eq!(
        problem(&format!("{three}\nquorum: 0")),
        "coordination.quorum: 0 is not allowed, use 1 or more"
    );
    assert_eq!(
        problem(&format!("{three}\nquorum: 4")),
        "coordination.quorum: 4 is more than the 3 configured agents (coordination.agents)"
    );
    assert_eq!(
        problem(&format!("{three}\nquorum: 3")),
        "coordination.quorum: 3 is more than the 2 configured agents outside a (agent-b, \
         agent-c): an outage of a could never be confirmed"
    );
    assert_eq!(
        problem("quorum: 1"),
        "coordination.quorum: needs coordination.agents: the quorum is a number of the \
         configured agents"
    );
    assert!(problem("quorum: two").starts_with("coordination.quorum: \"two\" is not valid"));
    let read = read_yaml(&format!("{FLEET}{three}\nquorum: 1"));
    assert_eq!(read.settings.unwrap().quorum, Some(1));
}
