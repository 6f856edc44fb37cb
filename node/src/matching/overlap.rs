//! Overlap counts for harmonisation figures (PSI-cardinality): how many of
//! our list's match keys are in a peer's list, and nothing else. The protocol
//! is in `privacy::cardinality` and docs/private-matching.md.

use std::collections::BTreeSet;
use std::sync::Arc;

use prost::Message;
use tessera_proto::v1::federation_client::FederationClient;
use tessera_proto::v1::{
    CardinalityRequest, CardinalityResponse, HarmoniseResponse, Notice, OverlapCell,
    ReportOverlapRequest,
};

use super::labels;
use crate::context::Context;
use crate::identity::AgencyId;
use crate::privacy::{CardinalityHolder, CardinalityQuery, HolderSet, cardinality::SetTag};

/// The match keys of our own notices in force, optionally only those `peer` may see.
pub fn own_keys(ctx: &Context, visible_to: Option<&AgencyId>) -> Result<Vec<String>, String> {
    let own = ctx
        .notices
        .list_latest(Some(ctx.agency.as_str()))
        .map_err(|e| e.to_string())?;
    let mut keys = BTreeSet::new();
    for stored in own {
        if let Some(peer) = visible_to
            && !stored.recipients.iter().any(|r| r == peer.as_str())
        {
            continue;
        }
        let Some(env) = stored.envelope else { continue };
        let Ok(notice) = Notice::decode(env.notice.as_slice()) else {
            continue;
        };
        if !labels::active(&notice) {
            continue;
        }
        keys.extend(labels::notice_keys(&notice).into_iter().map(|k| k.value));
    }
    Ok(keys.into_iter().collect())
}

/// Holder side: our set for `caller` under a fresh session key, and the
/// caller's elements evaluated and shuffled.
pub fn answer(
    ctx: &Context,
    caller: &AgencyId,
    blinded: &[Vec<u8>],
) -> Result<CardinalityResponse, String> {
    let keys = own_keys(ctx, Some(caller))?;
    let holder = CardinalityHolder::new();
    let set = holder.holder_set(&keys).map_err(|e| e.to_string())?;
    let evaluated = holder
        .evaluate_shuffled(blinded)
        .map_err(|e| e.to_string())?;
    Ok(CardinalityResponse {
        holder_tags: set.tags().iter().map(|t| t.to_vec()).collect(),
        evaluated: evaluated.iter().map(|e| e.to_vec()).collect(),
    })
}

/// Querier side: how many of our keys are in `peer`'s set for us.
pub async fn with_peer(ctx: &Context, peer: &AgencyId) -> Result<(u64, u64), String> {
    let keys = own_keys(ctx, None)?;
    if keys.is_empty() {
        return Ok((0, 0));
    }
    let n = keys.len() as u64;
    let (query, blinded) = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = keys.iter().map(String::as_bytes).collect();
        CardinalityQuery::blind(&refs)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let channel = ctx.peers.channel(peer, &ctx.tls)?;
    let response = FederationClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
        .cardinality(CardinalityRequest {
            blinded: blinded.iter().map(|b| b.to_vec()).collect(),
        })
        .await
        .map_err(|s| format!("{}: {}", peer, crate::dial::explain(&s)))?
        .into_inner();
    let tags: Vec<SetTag> = response
        .holder_tags
        .iter()
        .map(|t| {
            t.as_slice()
                .try_into()
                .map_err(|_| "the peer's set tags are malformed".to_owned())
        })
        .collect::<Result<_, _>>()?;
    let count = tokio::task::spawn_blocking(move || {
        query.count(&response.evaluated, &HolderSet::from_tags(tags))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok((count as u64, n))
}

/// Pairwise overlap counts among the members of `group`.
pub async fn harmonise(ctx: Arc<Context>, group: &str) -> Result<HarmoniseResponse, String> {
    let members = ctx
        .config
        .groups
        .get(group)
        .ok_or_else(|| format!("group {group:?} is not configured on this node"))?
        .clone();
    let mut response = HarmoniseResponse {
        members: members.clone(),
        ..HarmoniseResponse::default()
    };
    let own = ctx.agency.to_string();
    response
        .keys
        .insert(own.clone(), own_keys(&ctx, None)?.len() as u64);
    for (i, a) in members.iter().enumerate() {
        for b in &members[i + 1..] {
            let (first, second) = if *b == own { (b, a) } else { (a, b) };
            let result = if *first == own {
                match second.parse::<AgencyId>() {
                    Ok(peer) => with_peer(&ctx, &peer).await.map(|(c, _)| c),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                report(&ctx, first, second).await
            };
            let (count, problem) = match result {
                Ok(c) => (c, String::new()),
                Err(p) => (0, p),
            };
            response.cells.push(OverlapCell {
                a: a.clone(),
                b: b.clone(),
                count,
                problem,
            });
        }
    }
    Ok(response)
}

/// Asks `member` for its overlap with `other`.
async fn report(ctx: &Context, member: &str, other: &str) -> Result<u64, String> {
    let peer: AgencyId = member
        .parse()
        .map_err(|e: crate::identity::BadAgencyId| e.to_string())?;
    let channel = ctx.peers.channel(&peer, &ctx.tls)?;
    let r = FederationClient::new(channel)
        .report_overlap(ReportOverlapRequest {
            peer: other.to_owned(),
        })
        .await
        .map_err(|s| format!("{member}: {}", crate::dial::explain(&s)))?
        .into_inner();
    Ok(r.count)
}
