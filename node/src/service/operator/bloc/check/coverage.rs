//! Which members did not answer for a party: a member that could not be
//! reached, was not screened at all, or did not answer for every key of a
//! party. Nothing is clear at such a member.

use tessera_proto::v1::{PeerProblem, ScreenResponse};

/// The members of `others` that did not answer, each once, with the reason.
pub(super) fn unanswered(screened: &ScreenResponse, others: &[String]) -> Vec<PeerProblem> {
    let mut out: Vec<PeerProblem> = screened
        .unavailable
        .iter()
        .filter(|p| others.contains(&p.peer))
        .cloned()
        .collect();
    let mut add = |peer: &String, reason: String| {
        if !out.iter().any(|p| &p.peer == peer) {
            out.push(PeerProblem {
                peer: peer.clone(),
                reason,
            });
        }
    };
    for m in others
        .iter()
        .filter(|m| !screened.screened_peers.contains(m))
    {
        add(m, "not screened: not a peer this node can reach".into());
    }
    for r in &screened.results {
        for peer in r.unscreened.iter().filter(|p| others.contains(p)) {
            add(
                peer,
                format!("did not answer for every key of party {}", r.index),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use tessera_proto::v1::PartyResult;

    use super::*;

    #[test]
    fn each_silent_member_is_named_once_with_the_first_reason() {
        let screened = ScreenResponse {
            unavailable: vec![PeerProblem {
                peer: "FR-SBDU".into(),
                reason: "down".into(),
            }],
            screened_peers: vec!["NL-CDIU".into()],
            results: vec![PartyResult {
                index: 1,
                unscreened: vec!["NL-CDIU".into(), "FR-SBDU".into(), "US-BIS".into()],
                ..PartyResult::default()
            }],
            ..ScreenResponse::default()
        };
        let others = ["FR-SBDU".to_owned(), "NL-CDIU".to_owned()];
        let u = unanswered(&screened, &others);
        let got: Vec<(&str, &str)> = u
            .iter()
            .map(|p| (p.peer.as_str(), p.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("FR-SBDU", "down"),
                ("NL-CDIU", "did not answer for every key of party 1")
            ]
        );
    }
}
