//! The Audit page: verify the chain (and name the first bad entry if it
//! does not verify), and export it as JSON Lines.

use axum::body::Body;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use tessera_proto::v1::{AuditExportRequest, AuditVerifyRequest};

use super::page::{layout, message};
use super::{PageError, Shared};

/// `GET /audit`: verifies on every visit.
pub async fn page(state: Shared) -> Result<Html<String>, PageError> {
    let started = std::time::Instant::now();
    let verdict = state.op().audit_verify(AuditVerifyRequest::default()).await;
    let took = started.elapsed();
    let mut body = String::from(
        "<p>Every action the node takes on behalf of a peer or the operator is chained: each entry holds the hash of the one before, and signed checkpoints pin the chain. Entries hold agency ids, serials, counts and digests only, never a party.</p>",
    );
    match verdict {
        Ok(r) => {
            let r = r.into_inner();
            body.push_str(&message(
                "ok",
                &format!(
                    "The chain verifies: {} entries, {}, head {} (checked in {} ms).",
                    r.entries,
                    match r.checkpoints {
                        0 => "no signed checkpoint yet".to_owned(),
                        n => format!(
                            "{n} signed checkpoint(s), the last at entry {}",
                            r.last_checkpoint
                        ),
                    },
                    r.head_hash,
                    took.as_millis()
                ),
            ));
        }
        Err(s) => body.push_str(&message(
            "bad",
            &format!("The chain does NOT verify: {}", s.message()),
        )),
    }
    body.push_str(
        r#"<p><a href="/audit">Verify again</a> · <a href="/audit/export.jsonl" download>Export the chain (JSON Lines: entries and checkpoints)</a></p>"#,
    );
    Ok(layout(state.agency(), "Audit", "/audit", &body))
}

/// `GET /audit/export.jsonl`.
pub async fn export(state: Shared) -> Result<Response, PageError> {
    let mut stream = state
        .op()
        .audit_export(AuditExportRequest::default())
        .await
        .map_err(|s| state.failed(&s))?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.map_err(|s| state.failed(&s))? {
        bytes.extend_from_slice(&chunk.jsonl);
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/jsonl"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.jsonl\"",
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}
