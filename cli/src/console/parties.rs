//! Parties from the console's forms: one party from the screen form's
//! fields, many from an uploaded JSON Lines or CSV file (sent as
//! `multipart/form-data`, parsed here).

use serde::Deserialize;
use tessera_node::party::{Party, PartyKind};

use super::PageError;

/// Most parties in one batch: the node's limit per call times nothing more,
/// so a batch is always one budgeted run.
pub const MAX_BATCH: usize = 10_000;

/// The screen form's party fields, as typed.
#[derive(Debug, Default, Deserialize)]
pub struct PartyForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    /// One per line.
    #[serde(default)]
    pub aliases: String,
    /// One per line.
    #[serde(default)]
    pub script_names: String,
    /// One per line: TYPE:VALUE or TYPE:COUNTRY:VALUE.
    #[serde(default)]
    pub ids: String,
    /// Comma- or line-separated codes or names.
    #[serde(default)]
    pub countries: String,
    /// One per line.
    #[serde(default)]
    pub addresses: String,
    #[serde(default)]
    pub birth_date: String,
    /// Watch list only: the operator's reference and the purpose.
    #[serde(default)]
    pub reference: String,
    #[serde(default)]
    pub purpose: String,
    #[serde(default)]
    pub contact: String,
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn split_list(s: &str, separators: &[char]) -> Vec<String> {
    s.split(separators)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn kind(s: &str) -> Result<PartyKind, PageError> {
    if s.trim().is_empty() {
        return Ok(PartyKind::default());
    }
    s.trim()
        .parse::<PartyKind>()
        .map_err(|e| PageError::BadInput(format!("kind: {e}")))
}

fn ids(values: &[String]) -> Result<Vec<tessera_node::party::PartyId>, PageError> {
    values
        .iter()
        .map(|s| {
            crate::keys::parse_id(s)
                .map_err(|e| PageError::BadInput(e.to_string().replace("--id", "identifier")))
        })
        .collect()
}

impl PartyForm {
    /// The party, or a plain error naming the field.
    pub fn to_party(&self) -> Result<Party, PageError> {
        let name = self.name.trim();
        if name.is_empty() {
            return Err(PageError::BadInput("name: give the party's name".into()));
        }
        let birth = self.birth_date.trim();
        Ok(Party {
            kind: kind(&self.kind)?,
            name: name.to_owned(),
            aliases: lines(&self.aliases),
            original_script_names: lines(&self.script_names),
            ids: ids(&lines(&self.ids))?,
            countries: split_list(&self.countries, &[',', '\n']),
            addresses: lines(&self.addresses),
            birth_date: (!birth.is_empty()).then(|| birth.to_owned()),
        })
    }
}

/// The names of a party in the order the node numbers them in `query_names`:
/// the primary name, the aliases, then the original-script names.
pub fn names(p: &Party) -> Vec<&str> {
    std::iter::once(p.name.as_str())
        .chain(p.aliases.iter().map(String::as_str))
        .chain(p.original_script_names.iter().map(String::as_str))
        .collect()
}

/// Parties of an uploaded file: JSON Lines (one party object per line) or
/// CSV with a header row (`name` required; `kind`, `aliases`,
/// `original_script_names`, `ids`, `countries`, `addresses`, `birth_date`;
/// several values separated by `;`).
pub fn parse_batch(file_name: &str, data: &[u8]) -> Result<Vec<Party>, PageError> {
    let text = std::str::from_utf8(data)
        .map_err(|_| PageError::BadInput(format!("{file_name}: not UTF-8 text")))?;
    let text = text.trim_start_matches('\u{feff}');
    let is_csv = std::path::Path::new(file_name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        || !text.trim_start().starts_with('{');
    let parties = if is_csv {
        parse_csv(file_name, text)?
    } else {
        parse_jsonl(file_name, text)?
    };
    if parties.is_empty() {
        return Err(PageError::BadInput(format!("{file_name} holds no parties")));
    }
    if parties.len() > MAX_BATCH {
        return Err(PageError::BadInput(format!(
            "{file_name} holds {} parties; screen at most {MAX_BATCH} at once (split the file)",
            parties.len()
        )));
    }
    Ok(parties)
}

fn parse_jsonl(file_name: &str, text: &str) -> Result<Vec<Party>, PageError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let party: Party = serde_json::from_str(line).map_err(|e| {
            PageError::BadInput(format!(
                "{file_name}: line {}: {}",
                i + 1,
                tessera_node::notice::json::scrub_json_error(&e)
            ))
        })?;
        out.push(party);
    }
    Ok(out)
}

fn parse_csv(file_name: &str, text: &str) -> Result<Vec<Party>, PageError> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| PageError::BadInput(format!("{file_name}: header row: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase().replace([' ', '-'], "_"))
        .collect();
    let col = |name: &str| headers.iter().position(|h| h == name);
    let Some(name_col) = col("name") else {
        return Err(PageError::BadInput(format!(
            "{file_name}: the header row needs a `name` column (and may have kind, aliases, original_script_names, ids, countries, addresses, birth_date)"
        )));
    };
    let (kind_col, alias_col, script_col, ids_col, country_col, address_col, birth_col) = (
        col("kind"),
        col("aliases"),
        col("original_script_names"),
        col("ids"),
        col("countries"),
        col("addresses"),
        col("birth_date"),
    );
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record =
            record.map_err(|e| PageError::BadInput(format!("{file_name}: line {line}: {e}")))?;
        let get = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        let many = |c: Option<usize>| split_list(get(c), &[';']);
        let name = get(Some(name_col));
        if name.is_empty() {
            return Err(PageError::BadInput(format!(
                "{file_name}: line {line}: the name is empty"
            )));
        }
        let at_line = |e: PageError| PageError::BadInput(format!("{file_name}: line {line}: {e}"));
        let birth = get(birth_col);
        out.push(Party {
            kind: kind(get(kind_col)).map_err(at_line)?,
            name: name.to_owned(),
            aliases: many(alias_col),
            original_script_names: many(script_col),
            ids: ids(&many(ids_col)).map_err(at_line)?,
            countries: many(country_col),
            addresses: many(address_col),
            birth_date: (!birth.is_empty()).then(|| birth.to_owned()),
        });
    }
    Ok(out)
}

/// One field of a `multipart/form-data` body.
#[derive(Debug)]
pub struct Field {
    pub name: String,
    pub file_name: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn disposition_param(headers: &str, key: &str) -> Option<String> {
    let line = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?;
    let marker = format!(" {key}=\"");
    let start = line.find(&marker)? + marker.len();
    let end = line[start..].find('"')? + start;
    Some(line[start..end].to_owned())
}

/// The fields of a `multipart/form-data` body whose Content-Type is `content_type`.
pub fn multipart(content_type: &str, body: &[u8]) -> Result<Vec<Field>, PageError> {
    let bad =
        || PageError::BadInput("the upload is not a well-formed form (multipart/form-data)".into());
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or_else(bad)?;
    let delimiter = format!("--{boundary}").into_bytes();
    let mut fields = Vec::new();
    let mut at = find(body, &delimiter, 0).ok_or_else(bad)? + delimiter.len();
    loop {
        if body.get(at..at + 2) == Some(b"--") {
            break;
        }
        let start = at + 2; // after CRLF
        let next = find(body, &delimiter, start).ok_or_else(bad)?;
        let part = body.get(start..next.saturating_sub(2)).ok_or_else(bad)?;
        let split = find(part, b"\r\n\r\n", 0).ok_or_else(bad)?;
        let headers = String::from_utf8_lossy(&part[..split]);
        let name = disposition_param(&headers, "name").ok_or_else(bad)?;
        fields.push(Field {
            name,
            file_name: disposition_param(&headers, "filename"),
            data: part[split + 4..].to_vec(),
        });
        at = next + delimiter.len();
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_browser_upload_is_split_into_its_fields() {
        let body = b"------B\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n------B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\nname\r\nA\r\n\r\n------B--\r\n";
        let fields = multipart("multipart/form-data; boundary=----B", body).expect("parse");
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[0].name, "csrf");
        assert_eq!(fields[0].data, b"abc");
        assert_eq!(fields[1].file_name.as_deref(), Some("p.csv"));
        assert_eq!(fields[1].data, b"name\r\nA\r\n");
        assert!(multipart("multipart/form-data", body).is_err());
        assert!(multipart("multipart/form-data; boundary=zz", b"junk").is_err());
    }

    #[test]
    fn csv_and_json_lines_batches_read_every_field_and_name_bad_lines() {
        let csv = "Name,Kind,Countries,IDs,Aliases,Birth Date\nAcme FZE,organisation,AE;IR,LEI:529900T8BM49AURSDO55,Acme Trading;ACME,\nJo Bloggs,person,GB,,,1970\n";
        let parties = parse_batch("b.csv", csv.as_bytes()).expect("csv");
        assert_eq!(parties.len(), 2);
        assert_eq!(parties[0].countries, ["AE", "IR"]);
        assert_eq!(parties[0].aliases, ["Acme Trading", "ACME"]);
        assert_eq!(parties[0].ids[0].id_type, "LEI");
        assert_eq!(parties[1].kind, PartyKind::Person);
        assert_eq!(parties[1].birth_date.as_deref(), Some("1970"));
        assert_eq!(names(&parties[0]), ["Acme FZE", "Acme Trading", "ACME"]);

        let err = parse_batch("b.csv", b"kind\norganisation\n").expect_err("no name column");
        assert!(err.to_string().contains("`name` column"));
        let err = parse_batch("b.csv", b"name,kind\nA,spaceship\n").expect_err("bad kind");
        assert!(err.to_string().contains("line 2"), "{err}");

        let jsonl = "{\"name\":\"Acme FZE\",\"countries\":[\"AE\"]}\n\n{\"name\": 5}\n";
        let err = parse_batch("b.jsonl", jsonl.as_bytes()).expect_err("bad line");
        assert!(err.to_string().contains("line 3"), "{err}");
        let ok = parse_batch("b.jsonl", b"{\"name\":\"Acme FZE\"}\n").expect("jsonl");
        assert_eq!(ok[0].name, "Acme FZE");
        assert!(parse_batch("b.jsonl", b"\n\n").is_err(), "an empty file");
    }

    #[test]
    fn the_form_needs_a_name_and_reads_ids_with_their_country() {
        let form = PartyForm {
            name: "  ".into(),
            ..PartyForm::default()
        };
        assert!(form.to_party().is_err());
        let form = PartyForm {
            name: "Acme".into(),
            ids: "REG:CN:91310000EXAMPLE001\n\n".into(),
            countries: "CN, HK".into(),
            ..PartyForm::default()
        };
        let p = form.to_party().expect("party");
        assert_eq!(p.ids[0].country.as_deref(), Some("CN"));
        assert_eq!(p.countries, ["CN", "HK"]);
        let form = PartyForm {
            name: "Acme".into(),
            ids: "nonsense".into(),
            ..PartyForm::default()
        };
        assert!(form.to_party().is_err());
    }
}
