//! Delimited files (CSV, tab-separated) read row by row with their line
//! numbers, each field checked to be UTF-8. A row that the CSV parser or the
//! UTF-8 check rejects becomes a [`RowError`] naming the column.

use super::RowError;

/// One row: its 1-based line and its fields, or why it could not be read.
pub type Row = (u64, Result<Vec<String>, RowError>);

/// Reads all rows of `bytes` (no header handling: the first row is row one).
/// `columns` names the columns for error messages; rows with another number of
/// fields are errors. Blank lines are skipped.
pub fn rows(bytes: &[u8], delimiter: u8, columns: &[&str]) -> Vec<Row> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(bytes);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut lines = LineCounter::new(bytes);
    loop {
        let start = reader.position().byte();
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let offset = record.position().map_or(start, csv::Position::byte);
                let line = lines.line_at(offset);
                if record.len() == 1 && record[0].trim_ascii().is_empty() {
                    continue;
                }
                out.push((line, fields(&record, line, columns)));
            }
            Err(e) => {
                let line = lines.line_at(e.position().map_or(start, csv::Position::byte));
                let io = matches!(e.kind(), csv::ErrorKind::Io(_));
                let message = if io {
                    "the file could not be read to the end"
                } else {
                    "the row is not well-formed CSV"
                };
                out.push((line, Err(RowError::new(line, message))));
                if io {
                    break;
                }
            }
        }
    }
    out
}

/// Line numbers from byte offsets. csv's own line count is off by one after
/// a CRLF row, so lines are counted here: a record starts at the first byte
/// after the line breaks that precede it.
struct LineCounter<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record starting at `offset` (offsets only grow).
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut target = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        while matches!(self.bytes.get(target), Some(b'\r' | b'\n')) {
            target += 1;
        }
        if target > self.offset {
            #[allow(clippy::naive_bytecount)] // a few bytes per row; no extra crate for it
            let newlines = self.bytes[self.offset..target]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.line += u64::try_from(newlines).unwrap_or(u64::MAX);
            self.offset = target;
        }
        self.line
    }
}

fn fields(record: &csv::ByteRecord, line: u64, columns: &[&str]) -> Result<Vec<String>, RowError> {
    if record.len() != columns.len() {
        return Err(RowError::new(
            line,
            format!(
                "row has {} columns, expected {}",
                record.len(),
                columns.len()
            ),
        ));
    }
    record
        .iter()
        .zip(columns)
        .map(|(field, column)| {
            String::from_utf8(field.to_vec())
                .map_err(|_| RowError::new(line, format!("column {column} is not valid UTF-8")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_line_numbers_and_errors() {
        let data = b"a,b\r\n\"multi\nline\",x\r\nonly-one\r\n\xff,y\nc,d\n";
        let got = rows(data, b',', &["first", "second"]);
        let lines: Vec<u64> = got.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [1, 2, 4, 5, 6]);
        assert!(got[0].1.is_ok());
        assert_eq!(got[1].1.as_ref().map(|f| f[0].as_str()), Ok("multi\nline"));
        let err = got[2].1.as_ref().expect_err("short row");
        assert_eq!(err.message, "row has 1 columns, expected 2");
        let err = got[3].1.as_ref().expect_err("bad utf-8");
        assert_eq!(err.message, "column first is not valid UTF-8");
        assert!(got[4].1.is_ok());
    }
}
