//! The cases of docs/high-availability.md's witness table, three agents (in a, in b, at a
//! witness c) unless said, a active.

use std::time::SystemTime;

use super::*;

fn dc(name: &str) -> DatacenterId {
    DatacenterId::new(name)
}

fn probe(datacenter: &str, up: bool) -> Probe {
    Probe {
        datacenter: dc(datacenter),
        up,
        health: if up { 0.9 } else { 0.0 },
        sentinel_failover: false,
        sentinel_heard: None,
    }
}

/// An observer named `agent-<at>` (or `agent-c` at no datacenter) seeing a and b.
fn view(at: &str, a_up: bool, b_up: bool) -> View {
    View {
        observer: format!("agent-{at}"),
        datacenter: (at != "c").then(|| dc(at)),
        probes: vec![probe("a", a_up), probe("b", b_up)],
    }
}

fn round_of(v: &View) -> Round {
    Round {
        at: SystemTime::UNIX_EPOCH,
        probes: v.probes.clone(),
        witnesses: None,
    }
}

/// Counts with `own` as this agent's view; 2 agents outside a.
fn counted(own: View, others: Vec<View>) -> Round {
    count(&round_of(&own), own, others, &dc("a"), 2, Quorum::Majority)
}

fn up(c: &Round, datacenter: &str) -> bool {
    c.probe(&dc(datacenter)).unwrap().up
}

fn w(c: &Round) -> &Witnesses {
    c.witnesses
        .as_ref()
        .expect("counted rounds carry their witnesses")
}

#[test]
fn only_the_agent_in_a_cannot_reach_a_it_holds_as_a_partition_naming_the_others() {
    let c = counted(
        view("a", false, true),
        vec![view("b", true, true), view("c", true, true)],
    );
    assert!(w(&c).partition, "{c:?}");
    assert_eq!(w(&c).up, ["agent-b", "agent-c"]);
    assert_eq!(w(&c).inside, ["agent-a"]);
    assert!(w(&c).down.is_empty());
    // Led from b, the same fault is no fault at all: a answers.
    let c = counted(
        view("b", true, true),
        vec![view("a", false, true), view("c", true, true)],
    );
    assert!(!w(&c).partition && up(&c, "a"), "{c:?}");
}

#[test]
fn a_dies_with_its_agent_the_remaining_observers_confirm() {
    let c = counted(view("b", false, true), vec![view("c", false, true)]);
    assert!(!w(&c).partition);
    assert!(!up(&c, "a") && up(&c, "b"), "{c:?}");
    assert_eq!(w(&c).down, ["agent-b", "agent-c"]);
    assert_eq!(w(&c).quorum, 2);
}

#[test]
fn a_down_for_everyone_and_one_observer_cut_off_from_b_still_fails_over_to_b() {
    for (own, others) in [
        (
            view("b", false, true),
            vec![view("a", false, true), view("c", false, false)],
        ),
        (
            view("c", false, false),
            vec![view("a", false, true), view("b", false, true)],
        ),
    ] {
        let c = counted(own, others);
        assert!(!up(&c, "a"), "{c:?}");
        assert!(
            up(&c, "b"),
            "one observer's path to b does not block: {c:?}"
        );
        assert!(!w(&c).partition);
    }
}

#[test]
fn one_observer_cut_off_from_a_never_fails_over_alone() {
    // c cannot reach a; b can, and a's own agent too.
    let c = counted(
        view("c", false, true),
        vec![view("a", true, true), view("b", true, true)],
    );
    assert!(w(&c).partition, "{c:?}");
    assert_eq!(w(&c).down, ["agent-c"]);
    // Even with the agent in a dead and b's answer late: b's path alone...
    let c = counted(view("b", false, true), vec![view("a", true, true)]);
    assert!(w(&c).partition, "the agent in a sees it answer: {c:?}");
}

#[test]
fn the_quorum_wins_over_what_this_agent_or_the_agent_inside_sees() {
    // This agent (c) reaches a; a is cut off from b and from the agent in b, and the
    // agent in a sees it from within: one outside observer down, below the quorum.
    let c = counted(
        view("c", true, true),
        vec![view("a", true, true), view("b", false, true)],
    );
    assert!(up(&c, "a"), "{c:?}");
    // Both outside observers see it down, the agent inside sees it up: down.
    let c = counted(
        view("b", false, true),
        vec![view("a", true, true), view("c", false, true)],
    );
    assert!(!up(&c, "a") && !w(&c).partition, "{c:?}");
}

#[test]
fn with_nobody_else_answering_the_round_is_this_agents_own() {
    let own = view("b", false, true);
    let c = counted(own.clone(), Vec::new());
    assert_eq!(c.probes, own.probes);
    assert!(!w(&c).partition);
    // Below the quorum and seen answering by nobody (c's answer has no probe of a):
    // also its own view.
    let c_without_a = View {
        probes: vec![probe("b", true)],
        ..view("c", true, true)
    };
    let c = counted(own.clone(), vec![c_without_a]);
    assert!(!up(&c, "a") && !w(&c).partition, "{c:?}");
    assert_eq!(w(&c).down, ["agent-b"]);
}

#[test]
fn a_fixed_quorum_is_taken_as_configured() {
    let c = count(
        &round_of(&view("b", false, true)),
        view("b", false, true),
        vec![view("c", true, true)],
        &dc("a"),
        2,
        Quorum::Fixed(1),
    );
    assert!(!up(&c, "a") && !w(&c).partition, "{c:?}");
    assert_eq!(Quorum::Majority.of(2), 2);
    assert_eq!(Quorum::Majority.of(3), 2);
    assert_eq!(Quorum::Majority.of(4), 3);
}

fn agents(list: &[(&str, Option<&str>)]) -> BTreeMap<String, Option<DatacenterId>> {
    list.iter()
        .map(|(name, at)| (name.to_string(), at.map(dc)))
        .collect()
}

#[test]
fn configured_agents_count_dead_or_alive_and_only_the_living_are_waited_for() {
    let configured = agents(&[
        ("agent-a", Some("a")),
        ("agent-b", Some("b")),
        ("agent-c", None),
    ]);
    // c is dead: it is not present, but the quorum outside a is still 2 of {b, c}.
    let present = agents(&[("agent-a", Some("a")), ("agent-b", Some("b"))]);
    let o = Observers::new(&configured, &present, ("agent-b", Some(&dc("b"))));
    assert_eq!(o.outside(&dc("a")), 2);
    assert_eq!(Quorum::Majority.of(o.outside(&dc("a"))), 2);
    assert_eq!(o.awaited().iter().collect::<Vec<_>>(), ["agent-a"]);
    // An agent the list does not name is not counted.
    assert!(o.counts("agent-c") && !o.counts("agent-x"));
    // Without the list: the agents present, this one included even if it is not.
    let o = Observers::new(&BTreeMap::new(), &present, ("agent-c", None));
    assert_eq!(o.outside(&dc("a")), 2);
    assert_eq!(o.awaited().len(), 2);
    assert!(o.counts("agent-x"));
}

#[test]
fn b_alone_seeing_a_down_is_no_quorum_of_the_configured_agents() {
    // Led from b; c configured but dead; the agent in a sees a answer from within.
    let own = view("b", false, true);
    let c = count(
        &round_of(&own),
        own.clone(),
        vec![view("a", true, true)],
        &dc("a"),
        2,
        Quorum::Majority,
    );
    assert!(w(&c).partition, "{c:?}");
    assert_eq!((w(&c).down.len(), w(&c).quorum), (1, 2));
    // Counted among the agents present (as without the list), b alone is a majority of
    // one, but one path against the agent in a that reaches it: still held.
    let c = count(
        &round_of(&own),
        own.clone(),
        vec![view("a", true, true)],
        &dc("a"),
        1,
        Quorum::Majority,
    );
    assert!(w(&c).partition, "{c:?}");
    // And with `quorum: 1` configured, b alone is enough.
    let c = count(
        &round_of(&own),
        own,
        vec![view("a", true, true)],
        &dc("a"),
        2,
        Quorum::Fixed(1),
    );
    assert!(!up(&c, "a") && !w(&c).partition, "{c:?}");
}

#[test]
fn with_two_agents_one_down_view_against_one_up_view_is_no_quorum() {
    // Agents in a and b only: the quorum outside a is 1, yet b's one path is not enough
    // against the agent in a that reaches its Redis.
    let two = |own: View, other: View| {
        count(
            &round_of(&own),
            own,
            vec![other],
            &dc("a"),
            1,
            Quorum::Majority,
        )
    };
    let led_by_b = two(view("b", false, true), view("a", true, true));
    assert!(w(&led_by_b).partition, "{led_by_b:?}");
    assert_eq!(w(&led_by_b).down, ["agent-b"]);
    assert!(!up(&led_by_b, "a"), "b's own view, held as a partition");
    let led_by_a = two(view("a", true, true), view("b", false, true));
    assert!(up(&led_by_a, "a"), "{led_by_a:?}");
    assert!(!w(&led_by_a).partition);
    // With nobody seeing it answer, the one view outside is the quorum.
    let a_dead = two(view("b", false, true), view("a", false, true));
    assert!(!up(&a_dead, "a"));
    assert!(!w(&a_dead).partition);
}
