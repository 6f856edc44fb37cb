//! What an application must hold before it is screened, and the transaction
//! it states (control entries, destination, end use) as the rule compares it.

use tessera_proto::v1::Application;
use tonic::Status;

use super::super::invalid;
use crate::bloc::rule::Transaction;
use crate::notice::dates;

/// Most parties in one application.
const MAX_PARTIES: usize = 50;

/// Checks an application; returns the day it was received.
pub(super) fn validate(app: &Application) -> Result<time::Date, Status> {
    reference(&app.reference)?;
    parties(app)?;
    items(app)?;
    crate::notice::validate::country("application.destination", &app.destination)?;
    if app.destination.is_empty() {
        return Err(invalid("application.destination: empty"));
    }
    crate::notice::validate::text("application.end_use", &app.end_use, false)?;
    if app.received_on.is_empty() {
        return Ok(dates::today());
    }
    dates::parse(&app.received_on)
        .ok_or_else(|| invalid("application.received_on: not a date (YYYY-MM-DD)"))
}

fn reference(r: &str) -> Result<(), Status> {
    if r.is_empty() || r.len() > 64 || r.chars().any(char::is_control) {
        return Err(invalid(
            "application.reference: 1 to 64 characters, no control characters",
        ));
    }
    Ok(())
}

fn parties(app: &Application) -> Result<(), Status> {
    if app.parties.is_empty() || app.parties.len() > MAX_PARTIES {
        return Err(invalid(format!("application.parties: 1 to {MAX_PARTIES}")));
    }
    for (i, rp) in app.parties.iter().enumerate() {
        let mut p = rp
            .party
            .clone()
            .ok_or_else(|| invalid(format!("application.parties[{i}].party: missing")))?;
        if p.kind == 0 {
            p.kind = tessera_proto::v1::PartyKind::Organisation as i32;
        }
        crate::notice::validate::party(&format!("application.parties[{i}].party"), &p)?;
    }
    Ok(())
}

fn items(app: &Application) -> Result<(), Status> {
    if app.items.is_empty() {
        return Err(invalid(
            "application.items: at least one item with its control entry",
        ));
    }
    for (i, item) in app.items.iter().enumerate() {
        crate::notice::validate::text(
            &format!("application.items[{i}].control_entry"),
            &item.control_entry,
            true,
        )?;
    }
    Ok(())
}

/// The transaction the application states.
pub(super) fn transaction(app: &Application) -> Transaction {
    Transaction {
        control_entries: app.items.iter().map(|i| i.control_entry.clone()).collect(),
        destination: app.destination.clone(),
        end_use: app.end_use.clone(),
    }
}
