//! Which configured datacenter each Active-Active syncer source is (pure).
//!
//! A source names its cluster only by the address of the database there
//! (`redis://redis-12000.cluster2.example.com:12000`: Redis Enterprise gives each
//! database a name under its cluster's FQDN). The CRDB's participants
//! (`GET /v1/crdbs/{guid}`) give each cluster's name and API URL; a participant is a
//! configured datacenter when its API URL's host is the datacenter's `api_url` host, or
//! its name is the datacenter's key or `name`. Without the CRDB, a source is matched
//! straight to a datacenter whose `api_url` host it is under.

use super::parse::{Participant, host_of};
use crate::model::DatacenterId;

/// A configured datacenter as matching sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Known {
    pub id: DatacenterId,
    /// `datacenters.<dc>.name`, lower case.
    pub name: String,
    /// The host of `api_url`, lower case.
    pub api_host: String,
}

/// `host` is `domain` or a name under it.
fn within(host: &str, domain: &str) -> bool {
    !domain.is_empty()
        && (host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// The datacenter whose cluster serves the source at `uri`, if any can be told.
pub fn datacenter_of(
    uri: &str,
    participants: &[Participant],
    known: &[Known],
) -> Option<DatacenterId> {
    let host = host_of(uri);
    let participant = participants
        .iter()
        .filter(|p| within(&host, &p.name) || within(&host, &p.url_host))
        .max_by_key(|p| p.name.len().max(p.url_host.len()));
    if let Some(p) = participant {
        let found = known.iter().find(|k| {
            (!k.api_host.is_empty() && k.api_host == p.url_host)
                || k.name == p.name
                || k.id.to_string().eq_ignore_ascii_case(&p.name)
                || within(&k.api_host, &p.name)
        });
        if found.is_some() {
            return found.map(|k| k.id.clone());
        }
    }
    known
        .iter()
        .filter(|k| within(&host, &k.api_host) || within(&host, &k.name))
        .max_by_key(|k| k.api_host.len())
        .map(|k| k.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<Known> {
        vec![
            Known {
                id: DatacenterId::new("east"),
                name: "us-east".into(),
                api_host: "cluster1.re.example.com".into(),
            },
            Known {
                id: DatacenterId::new("west"),
                name: "us-west".into(),
                api_host: "cluster2.re.example.com".into(),
            },
        ]
    }

    #[test]
    fn a_source_is_matched_through_the_crdb_participants() {
        let participants = vec![
            Participant {
                name: "cluster1.re.example.com".into(),
                url_host: "cluster1.re.example.com".into(),
            },
            Participant {
                name: "cluster2.re.example.com".into(),
                url_host: "api.cluster2.re.example.com".into(),
            },
        ];
        let dc = datacenter_of(
            "redis://admin:pw@redis-12000.cluster2.re.example.com:12000",
            &participants,
            &known(),
        );
        assert_eq!(dc, Some(DatacenterId::new("west")));
    }

    #[test]
    fn without_the_crdb_a_source_is_matched_by_the_api_host() {
        let dc = datacenter_of(
            "redis://redis-12000.cluster1.re.example.com:12000",
            &[],
            &known(),
        );
        assert_eq!(dc, Some(DatacenterId::new("east")));
        // A look-alike suffix is not a match.
        let dc = datacenter_of("redis://redis-1.xcluster1.re.example.com:1", &[], &known());
        assert_eq!(dc, None);
    }

    #[test]
    fn a_participant_is_matched_by_the_datacenter_name() {
        let participants = vec![Participant {
            name: "us-west".into(),
            url_host: String::new(),
        }];
        let dc = datacenter_of("redis://10.0.0.9:12000", &participants, &known());
        assert_eq!(dc, None, "an address under no participant name");
        let dc = datacenter_of("redis://db.us-west:12000", &participants, &known());
        assert_eq!(dc, Some(DatacenterId::new("west")));
    }
}
