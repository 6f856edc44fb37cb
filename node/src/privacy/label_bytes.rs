//! The compact byte form of a [`Label`], which is what gets sealed: a peer's replicated
//! index holds a million of them, so every byte counts (JSON would double the size).
//!
//! ```text
//! u8 version (1) · u8 level (0 pointer, 1 summary, 2 full)
//! str origin · str serial · str authority_ref · str contact · str key_kind · str strength
//! summary, full: str action · u16 count, str control entry × count · str decision_date · str destination
//! full:          u32 length, the notice body as JSON
//! str = u16 length (little-endian) then UTF-8; all integers little-endian; nothing may follow.
//! ```
//!
//! The decoder reads bytes that came from a peer (after the AEAD authenticated them as the
//! holder's): every length is checked, and a short, long or non-UTF-8 input is an error.

use super::PrivacyError;
use super::label::{Disclosure, Label, Summary};

const VERSION: u8 = 1;

/// Encodes a label. Fails only on a field longer than its length prefix allows.
pub fn encode(label: &Label) -> Result<Vec<u8>, PrivacyError> {
    let mut out = Vec::with_capacity(128);
    let level = match label.disclosure {
        Disclosure::Pointer => 0,
        Disclosure::Summary(_) => 1,
        Disclosure::Full { .. } => 2,
    };
    out.extend_from_slice(&[VERSION, level]);
    put_str(&mut out, &label.origin, "origin")?;
    put_str(&mut out, &label.serial, "serial")?;
    put_str(&mut out, &label.authority_ref, "authority_ref")?;
    put_str(&mut out, &label.contact, "contact")?;
    put_str(&mut out, &label.key_kind, "key_kind")?;
    put_str(&mut out, &label.strength, "strength")?;
    match &label.disclosure {
        Disclosure::Pointer => {}
        Disclosure::Summary(summary) => put_summary(&mut out, summary)?,
        Disclosure::Full { summary, notice } => {
            put_summary(&mut out, summary)?;
            let body = serde_json::to_vec(notice)
                .map_err(|_| PrivacyError::LabelTooLong { field: "notice" })?;
            let len = u32::try_from(body.len())
                .map_err(|_| PrivacyError::LabelTooLong { field: "notice" })?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&body);
        }
    }
    Ok(out)
}

/// Decodes [`encode`]'s output.
pub fn decode(bytes: &[u8]) -> Result<Label, PrivacyError> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(1)? != [VERSION] {
        return Err(PrivacyError::LabelMalformed { offset: 0 });
    }
    let level = r.take(1)?[0];
    let origin = r.string()?;
    let serial = r.string()?;
    let authority_ref = r.string()?;
    let contact = r.string()?;
    let key_kind = r.string()?;
    let strength = r.string()?;
    let disclosure = match level {
        0 => Disclosure::Pointer,
        1 => Disclosure::Summary(r.summary()?),
        2 => {
            let summary = r.summary()?;
            let len = r.u32()? as usize;
            let at = r.at;
            let notice = serde_json::from_slice(r.take(len)?)
                .map_err(|_| PrivacyError::LabelMalformed { offset: at })?;
            Disclosure::Full { summary, notice }
        }
        _ => return Err(PrivacyError::LabelMalformed { offset: 1 }),
    };
    if r.at != bytes.len() {
        return Err(PrivacyError::LabelMalformed { offset: r.at });
    }
    Ok(Label {
        origin,
        serial,
        authority_ref,
        contact,
        key_kind,
        strength,
        disclosure,
    })
}

fn put_summary(out: &mut Vec<u8>, s: &Summary) -> Result<(), PrivacyError> {
    put_str(out, &s.action, "action")?;
    let count = u16::try_from(s.control_entries.len()).map_err(|_| PrivacyError::LabelTooLong {
        field: "control_entries",
    })?;
    out.extend_from_slice(&count.to_le_bytes());
    for entry in &s.control_entries {
        put_str(out, entry, "control_entries")?;
    }
    put_str(out, &s.decision_date, "decision_date")?;
    put_str(out, &s.destination, "destination")
}

fn put_str(out: &mut Vec<u8>, s: &str, field: &'static str) -> Result<(), PrivacyError> {
    let len = u16::try_from(s.len()).map_err(|_| PrivacyError::LabelTooLong { field })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PrivacyError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        let end = end.ok_or(PrivacyError::LabelMalformed { offset: self.at })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u16(&mut self) -> Result<u16, PrivacyError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, PrivacyError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn string(&mut self) -> Result<String, PrivacyError> {
        let len = usize::from(self.u16()?);
        let at = self.at;
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| PrivacyError::LabelMalformed { offset: at })
    }

    fn summary(&mut self) -> Result<Summary, PrivacyError> {
        let action = self.string()?;
        let count = self.u16()?;
        let control_entries = (0..count)
            .map(|_| self.string())
            .collect::<Result<_, _>>()?;
        let decision_date = self.string()?;
        let destination = self.string()?;
        Ok(Summary {
            action,
            control_entries,
            decision_date,
            destination,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::label::tests::{full, pointer, summary};
    use super::*;

    #[test]
    fn every_level_round_trips() {
        let summary = Label {
            disclosure: Disclosure::Summary(summary()),
            ..pointer()
        };
        for label in [pointer(), summary, full()] {
            let bytes = encode(&label).unwrap();
            assert_eq!(decode(&bytes).unwrap(), label);
        }
    }

    #[test]
    fn pointer_is_compact() {
        let bytes = encode(&pointer()).unwrap();
        let json = serde_json::to_vec(&pointer()).unwrap();
        assert!(
            bytes.len() * 10 < json.len() * 6,
            "{} vs {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn every_truncation_and_extension_fails_cleanly() {
        let bytes = encode(&full()).unwrap();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "prefix of {cut} decoded");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        let mut bad_level = bytes;
        bad_level[1] = 9;
        assert_eq!(
            decode(&bad_level).unwrap_err(),
            PrivacyError::LabelMalformed { offset: 1 }
        );
    }

    #[test]
    fn oversized_field_is_an_error() {
        let label = Label {
            contact: "x".repeat(70_000),
            ..pointer()
        };
        assert_eq!(
            encode(&label).unwrap_err(),
            PrivacyError::LabelTooLong { field: "contact" }
        );
    }
}
