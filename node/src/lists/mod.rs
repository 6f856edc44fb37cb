//! Readers for the public screening lists: the US Consolidated Screening List
//! (CSL), the BIS Denied Persons List (DPL), the OFAC SDN list with its alias
//! and address files, the UN Security Council Consolidated List, FollowTheMoney
//! entities (OpenSanctions) and our own JSON Lines parties.
//!
//! Each reader turns one source row into a [`ListRecord`]: a [`Party`] plus the
//! list's own metadata (list name, id, programmes, dates, notice). Source
//! strings are carried as the source writes them; countries are not
//! normalised here, identifier labels are mapped to the scheme names of
//! [`PartyId`](crate::party::PartyId) (see `ids`).
//!
//! A row that cannot be read becomes a [`RowError`] and reading goes on with the
//! next row; only a file that cannot be opened, or whose header says it is not
//! the format asked for, fails the whole read with a [`ListError`].
//!
//! This module must never put a party name, alias or identifier value into an
//! error, a warning or a log line: messages name the column and the problem.
//!
//! Layout: `csl`, `dpl`, `sdn` (+ `sdn_remarks`), `un`, `ftm`, `jsonl` read one
//! format each; `table` (CSV/TSV rows with line numbers) and `xml` (one record
//! tree at a time) read the containers; `ids` maps identifier labels to
//! schemes; `dates` normalises dates; `text` holds the small string helpers.

mod csl;
mod dates;
mod dpl;
mod ftm;
mod ids;
mod jsonl;
mod sdn;
mod sdn_remarks;
mod table;
mod text;
pub use text::json_problem;
mod un;
mod xml;

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod whole_lists;

use std::path::{Path, PathBuf};

use crate::party::Party;

/// The source formats [`read`] understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// trade.gov Consolidated Screening List, `consolidated.csv`.
    Csl,
    /// BIS Denied Persons List, native tab-separated `dpl.txt`.
    Dpl,
    /// OFAC SDN `sdn.csv` (with `alt.csv` and `add.csv` beside it).
    Sdn,
    /// UN Security Council Consolidated List XML.
    Un,
    /// One Tessera [`Party`] JSON object per line.
    Jsonl,
    /// FollowTheMoney entities, one JSON object per line (OpenSanctions).
    Ftm,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csl => "csl",
            Self::Dpl => "dpl",
            Self::Sdn => "sdn",
            Self::Un => "un",
            Self::Jsonl => "jsonl",
            Self::Ftm => "ftm",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = ListError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csl" => Ok(Self::Csl),
            "dpl" => Ok(Self::Dpl),
            "sdn" => Ok(Self::Sdn),
            "un" => Ok(Self::Un),
            "jsonl" => Ok(Self::Jsonl),
            "ftm" => Ok(Self::Ftm),
            other => Err(ListError::UnknownFormat(other.to_string())),
        }
    }
}

/// One entry of a list, read into the party model plus the list's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRecord {
    /// 1-based line of the row in the source file (for XML: the record number).
    pub line: u64,
    /// The source list: CSL `source` verbatim, `SDN`, `DPL`, `UN`; for FTM the
    /// first dataset or `ftm`; for JSON Lines the record's `list` or `jsonl`.
    pub list: String,
    /// The list's own id for the entry (CSL `entity_number` or `_id`, SDN
    /// `ent_num`, UN `DATAID`, FTM `id`, DPL a hash: see `dpl`).
    pub list_id: String,
    pub party: Party,
    /// The source's type, lower case: OFAC `individual`, `entity` (OFAC `-0-`),
    /// `vessel`, `aircraft`; CSL's `type` column when it has one.
    pub sdn_type: Option<String>,
    pub programs: Vec<String>,
    /// `YYYY-MM-DD` when the source gives a plausible date.
    pub start_date: Option<String>,
    pub end_date: Option<String>,
    /// When the source last changed the entry (DPL `Last_Update`, UN `LAST_DAY_UPDATED`).
    pub updated: Option<String>,
    /// The list's human reference where it has one apart from the id (UN `QDi.006`).
    pub reference: Option<String>,
    pub federal_register_notice: Option<String>,
    pub remarks: Option<String>,
    pub source_url: Option<String>,
    /// Problems that did not stop the row being read, e.g. an implausible date
    /// that was dropped. Each names the column, never a value.
    pub warnings: Vec<String>,
}

/// A row that could not be read. `message` names the column or problem and
/// never contains a party name or identifier value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct RowError {
    pub line: u64,
    pub message: String,
}

impl RowError {
    pub(crate) fn new(line: u64, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }
}

/// Why a whole file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The cause is in the message (not a source), so that it is said once.
    #[error("cannot read list file {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{path} is not a {format} file: {problem}")]
    WrongFormat {
        path: PathBuf,
        format: Format,
        problem: String,
    },
    #[error("unknown list format {0:?} (expected csl, dpl, sdn, un, jsonl or ftm)")]
    UnknownFormat(String),
    #[error("list file {path} is larger than {} MiB; no list is that large", MAX_FILE >> 20)]
    TooLarge { path: PathBuf },
}

/// What every reader returns: one result per row, in file order.
pub type Rows = Vec<Result<ListRecord, RowError>>;

/// Longest row of a JSON Lines file; a longer one is refused and ends the
/// read (the rest of the file is not read), so that a file with no line
/// breaks (`/dev/zero`, binary data) costs at most this much memory.
pub const MAX_ROW: usize = 1 << 20;
/// Largest list file read whole (CSV and XML lists); the largest public
/// list is well under a tenth of this.
pub const MAX_FILE: u64 = 512 << 20;

/// Reads a whole list file. For [`Format::Sdn`], `path` is `sdn.csv`; the
/// `alt.csv` and `add.csv` beside it are joined in when present.
pub fn read(format: Format, path: &Path) -> Result<Rows, ListError> {
    match format {
        Format::Csl => csl::read(path),
        Format::Dpl => dpl::read(path),
        Format::Sdn => sdn::read(path),
        Format::Un => un::read(path),
        Format::Jsonl | Format::Ftm => {
            let mut rows = Vec::new();
            read_each(format, path, |row| rows.push(row))?;
            Ok(rows)
        }
    }
}

/// Reads a list file and hands each row to `each` as it is read. JSON Lines
/// and FollowTheMoney are streamed with one row (at most [`MAX_ROW`] bytes)
/// in memory; the other formats are read whole (at most [`MAX_FILE`] bytes).
pub fn read_each(
    format: Format,
    path: &Path,
    mut each: impl FnMut(Result<ListRecord, RowError>),
) -> Result<(), ListError> {
    match format {
        Format::Jsonl => text::stream_json_lines(path, format, jsonl::record, each),
        Format::Ftm => text::stream_json_lines(path, format, ftm::record, each),
        _ => {
            read(format, path)?.into_iter().for_each(&mut each);
            Ok(())
        }
    }
}

/// Where the real lists of `shared/data` are: `$TESSERA_SHARED_DATA` if set,
/// else `../shared/data` beside the workspace (resolved at compile time), else
/// `../shared/data` from the current directory; `None` if none exists.
pub fn shared_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("TESSERA_SHARED_DATA") {
        return Some(PathBuf::from(dir));
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    if built.is_dir() {
        return Some(built);
    }
    let cwd = Path::new("../shared/data");
    cwd.is_dir().then(|| cwd.to_path_buf())
}

/// Reads a file whole, dropping a UTF-8 byte-order mark and the DOS
/// end-of-file byte (0x1A) that OFAC files end with.
fn load(path: &Path) -> Result<Vec<u8>, ListError> {
    use std::io::Read;
    let io = |error| ListError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(io)?
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(ListError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    if bytes.starts_with(&[0xEF, 0xBB, 0xBF]) {
        bytes.drain(..3);
    }
    while matches!(bytes.last(), Some(0x1A)) {
        bytes.pop();
    }
    Ok(bytes)
}

fn wrong_format(path: &Path, format: Format, problem: impl Into<String>) -> ListError {
    ListError::WrongFormat {
        path: path.to_path_buf(),
        format,
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_parses_every_name() {
        for name in ["csl", "dpl", "sdn", "un", "jsonl", "ftm"] {
            let f: Format = name.parse().expect("known format");
            assert_eq!(f.as_str(), name);
        }
        assert_eq!("CSL".parse::<Format>().ok(), Some(Format::Csl));
        let err = "xls".parse::<Format>().expect_err("unknown format");
        assert!(err.to_string().contains("expected csl"));
    }

    #[test]
    fn missing_file_is_a_list_error() {
        let err = read(Format::Csl, Path::new("/nonexistent/consolidated.csv"))
            .expect_err("no such file");
        assert!(matches!(err, ListError::Io { .. }));
        assert!(err.to_string().starts_with("cannot read list file"));
    }

    /// Cut-off and corrupted copies of every fixture: readers may fail, never panic.
    #[test]
    fn truncated_and_corrupted_input_never_panics() {
        let fixtures = [
            (Format::Csl, "consolidated.csv"),
            (Format::Dpl, "dpl.txt"),
            (Format::Sdn, "sdn/sdn.csv"),
            (Format::Un, "un_consolidated.xml"),
            (Format::Jsonl, "parties.jsonl"),
            (Format::Ftm, "ftm.jsonl"),
        ];
        for (format, name) in fixtures {
            let bytes = std::fs::read(test_support::fixture(name)).expect("fixture");
            let file = name.rsplit('/').next().unwrap_or(name);
            let path = test_support::temp_file(file, b"");
            for cut in (0..bytes.len()).step_by(97) {
                let mut damaged = bytes[..cut].to_vec();
                std::fs::write(&path, &damaged).expect("write");
                let _ = read(format, &path);
                if let Some(b) = damaged.get_mut(cut / 2) {
                    *b = [b'"', b'\t', b'<', 0xFF, b'{', b'\n'][cut % 6];
                }
                std::fs::write(&path, &damaged).expect("rewrite");
                let _ = read(format, &path);
            }
        }
    }

    #[test]
    fn load_strips_bom_and_eof_byte() {
        let path = test_support::temp_file("bom.csv", b"\xEF\xBB\xBFa,b\r\n\x1A");
        assert_eq!(load(&path).expect("readable"), b"a,b\r\n");
    }
}
