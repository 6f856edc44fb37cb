//! The querier's copy of a peer's index, for lookups by tag (docs/architecture.md, "Private matching", points 3-4).
//!
//! Memory matters (a peer may list a million keys), so the rows live in three flat
//! vectors rather than a map of small allocations: the tags sorted (16 bytes a row), the
//! start of each row in an arena (4 bytes a row), and the arena of `nonce ‖ sealed` (24 +
//! label + 16). A pointer label costs about 140 bytes a row in all. Tags are uniform (they
//! are OPRF outputs, or hashes), so a table of where each leading-bits prefix starts (about
//! one entry per four rows, a byte a row) takes a lookup to a handful of rows, and a
//! binary search among those finds the tag: one or two cache misses, not the twenty of a
//! search over a large table, which counts when a screen looks up hundreds of tags in
//! each of a few dozen segments. Several rows may share a tag (one key labelling several
//! notices).
//!
//! The structure is immutable; replication deltas are applied with [`IndexLookup::extend`]
//! and [`IndexLookup::retained`], which rebuild it (linear time; apply deltas in batches), or
//! kept as small tables that [`IndexLookup::merge`] joins (`matching::replica::RowSet`).

use super::PrivacyError;
use super::index::IndexEntry;
use super::label::Label;
use super::oprf::OprfOutput;
use super::seal::{self, NONCE_LEN, Tag};

/// A sorted, compact `tag -> entries` table.
#[derive(Debug, Default, Clone)]
pub struct IndexLookup {
    tags: Vec<Tag>,
    /// `starts[i]..starts[i + 1]` is row `i` in `arena`; one more than the rows.
    starts: Vec<u32>,
    arena: Vec<u8>,
    /// `prefixes[b]` is the first row whose tag's leading `prefix_bits` bits are `b` or
    /// more; one more entry than there are prefixes. Empty for an empty table.
    prefixes: Vec<u32>,
    prefix_bits: u32,
}

/// Leading bits of `tag`, as a bucket of [`IndexLookup::prefixes`].
fn prefix(tag: &Tag, bits: u32) -> usize {
    if bits == 0 {
        return 0;
    }
    let lead = u32::from_be_bytes([tag[0], tag[1], tag[2], tag[3]]);
    (lead >> (32 - bits)) as usize
}

/// The prefix table of sorted `tags`: about four rows a prefix, at most 2^20 prefixes.
fn prefix_table(tags: &[Tag]) -> (Vec<u32>, u32) {
    if tags.is_empty() {
        return (Vec::new(), 0);
    }
    let bits = (usize::BITS - (tags.len() / 4).leading_zeros()).min(20);
    let mut table = Vec::with_capacity((1 << bits) + 1);
    for (i, tag) in tags.iter().enumerate() {
        let p = prefix(tag, bits);
        while table.len() <= p {
            // Rows are at most u32::MAX: the arena's offsets are u32 and a row has bytes.
            table.push(i as u32);
        }
    }
    while table.len() <= 1 << bits {
        table.push(tags.len() as u32);
    }
    (table, bits)
}

/// A row borrowed from an [`IndexLookup`].
#[derive(Debug, Clone, Copy)]
pub struct EntryRef<'a> {
    pub tag: &'a Tag,
    pub nonce: &'a [u8; NONCE_LEN],
    pub sealed: &'a [u8],
}

impl EntryRef<'_> {
    /// Opens the row's label with the OPRF output that found it.
    pub fn open(&self, y: &OprfOutput) -> Result<Label, PrivacyError> {
        seal::open(y, self.tag, self.nonce, self.sealed)
    }

    /// Opens the row's record (a label, a pointer, a share, a name record) with `y`.
    pub fn open_record(&self, y: &OprfOutput) -> Result<super::Record, PrivacyError> {
        super::index::open_row(y, self.tag, self.nonce, self.sealed)
    }

    /// An owned copy.
    pub fn to_entry(&self) -> IndexEntry {
        IndexEntry {
            tag: *self.tag,
            nonce: *self.nonce,
            sealed: self.sealed.to_vec(),
        }
    }
}

impl IndexLookup {
    /// Builds the table from rows.
    pub fn from_entries(
        entries: impl IntoIterator<Item = IndexEntry>,
    ) -> Result<Self, PrivacyError> {
        let mut builder = IndexLookupBuilder::default();
        for entry in entries {
            builder.push(&entry.tag, &entry.nonce, &entry.sealed)?;
        }
        Ok(builder.finish())
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.tags.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.tags.is_empty()
    }

    /// The rows under `tag` (none for a key the peer does not list).
    pub fn get<'a>(&'a self, tag: &Tag) -> impl Iterator<Item = EntryRef<'a>> + use<'a> {
        let (lo, hi) = match self.prefixes.get(prefix(tag, self.prefix_bits)..) {
            Some([lo, hi, ..]) => (*lo as usize, *hi as usize),
            _ => (0, 0),
        };
        let first = lo + self.tags[lo..hi].partition_point(|t| t < tag);
        let tag = *tag;
        (first..hi)
            .take_while(move |&i| self.tags[i] == tag)
            .map(|i| self.row(i))
    }

    /// Every row, in tag order.
    pub fn iter(&self) -> impl Iterator<Item = EntryRef<'_>> {
        (0..self.tags.len()).map(|i| self.row(i))
    }

    /// Adds rows (a replication delta).
    pub fn extend(
        self,
        entries: impl IntoIterator<Item = IndexEntry>,
    ) -> Result<Self, PrivacyError> {
        let mut builder = IndexLookupBuilder::default();
        for row in self.iter() {
            builder.push(row.tag, row.nonce, row.sealed)?;
        }
        for entry in entries {
            builder.push(&entry.tag, &entry.nonce, &entry.sealed)?;
        }
        Ok(builder.finish())
    }

    /// A copy with the rows for which `keep` holds (removals of a replication delta, named
    /// by tag and nonce, which together identify a row); this table stays as it is.
    #[must_use]
    pub fn retained(&self, mut keep: impl FnMut(&EntryRef<'_>) -> bool) -> Self {
        let mut builder = IndexLookupBuilder::default();
        for row in self.iter().filter(|row| keep(row)) {
            // Rows of a table that already fits fit again: the arena only shrinks.
            builder
                .push(row.tag, row.nonce, row.sealed)
                .expect("a subset of a valid table");
        }
        builder.finish()
    }

    /// One table holding the rows of `parts`, in tag order; rows under one tag keep the
    /// order of `parts`, then their own. Each vector is allocated once at its final size,
    /// so a merge holds no more than the parts and the result.
    pub fn merge(parts: &[&Self]) -> Result<Self, PrivacyError> {
        let rows: usize = parts.iter().map(|p| p.len()).sum();
        let bytes: usize = parts.iter().map(|p| p.arena.len()).sum();
        u32::try_from(bytes).map_err(|_| PrivacyError::IndexTooLarge)?;
        let mut out = Self {
            tags: Vec::with_capacity(rows),
            starts: Vec::with_capacity(rows + 1),
            arena: Vec::with_capacity(bytes),
            prefixes: Vec::new(),
            prefix_bits: 0,
        };
        // The next row of each part; the smallest tag goes first, the earliest part on ties.
        let mut next = vec![0usize; parts.len()];
        loop {
            let mut pick: Option<(usize, &Tag)> = None;
            for (p, part) in parts.iter().enumerate() {
                if let Some(tag) = part.tags.get(next[p])
                    && pick.is_none_or(|(_, best)| tag < best)
                {
                    pick = Some((p, tag));
                }
            }
            let Some((p, _)) = pick else { break };
            let row = parts[p].row(next[p]);
            out.tags.push(*row.tag);
            // The total was checked to fit u32 above.
            out.starts.push(out.arena.len() as u32);
            out.arena.extend_from_slice(row.nonce);
            out.arena.extend_from_slice(row.sealed);
            next[p] += 1;
        }
        out.starts.push(out.arena.len() as u32);
        (out.prefixes, out.prefix_bits) = prefix_table(&out.tags);
        Ok(out)
    }

    /// Heap bytes held (capacities), for capacity planning.
    pub fn heap_bytes(&self) -> usize {
        self.tags.capacity() * size_of::<Tag>()
            + (self.starts.capacity() + self.prefixes.capacity()) * 4
            + self.arena.capacity()
    }

    fn row(&self, i: usize) -> EntryRef<'_> {
        let start = self.starts[i] as usize;
        let end = self.starts[i + 1] as usize;
        let (nonce, sealed) = self.arena[start..end].split_at(NONCE_LEN);
        // Every row was pushed with a nonce of exactly NONCE_LEN bytes.
        let nonce = nonce.try_into().expect("row starts with its nonce");
        EntryRef {
            tag: &self.tags[i],
            nonce,
            sealed,
        }
    }
}

/// Accumulates rows without holding one allocation per row, then sorts once.
#[derive(Debug, Default)]
pub struct IndexLookupBuilder {
    rows: Vec<(Tag, u32, u32)>,
    arena: Vec<u8>,
}

impl IndexLookupBuilder {
    /// Adds one row. Fails only when the arena would pass 4 GiB.
    pub fn push(
        &mut self,
        tag: &Tag,
        nonce: &[u8; NONCE_LEN],
        sealed: &[u8],
    ) -> Result<(), PrivacyError> {
        let start = u32::try_from(self.arena.len()).map_err(|_| PrivacyError::IndexTooLarge)?;
        let len =
            u32::try_from(NONCE_LEN + sealed.len()).map_err(|_| PrivacyError::IndexTooLarge)?;
        start.checked_add(len).ok_or(PrivacyError::IndexTooLarge)?;
        self.arena.extend_from_slice(nonce);
        self.arena.extend_from_slice(sealed);
        self.rows.push((*tag, start, len));
        Ok(())
    }

    /// Sorts by tag and lays the arena out in that order.
    pub fn finish(mut self) -> IndexLookup {
        self.rows
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut tags = Vec::with_capacity(self.rows.len());
        let mut starts = Vec::with_capacity(self.rows.len() + 1);
        let mut arena = Vec::with_capacity(self.arena.len());
        for (tag, start, len) in &self.rows {
            tags.push(*tag);
            // The arena's total length was checked to fit u32 on every push.
            starts.push(arena.len() as u32);
            arena.extend_from_slice(&self.arena[*start as usize..(*start + *len) as usize]);
        }
        starts.push(arena.len() as u32);
        let (prefixes, prefix_bits) = prefix_table(&tags);
        IndexLookup {
            tags,
            starts,
            arena,
            prefixes,
            prefix_bits,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: u8, nonce: u8, sealed_len: usize) -> IndexEntry {
        IndexEntry {
            tag: [tag; 16],
            nonce: [nonce; 24],
            sealed: vec![nonce; sealed_len],
        }
    }

    #[test]
    fn finds_every_row_of_a_tag() {
        let index =
            IndexLookup::from_entries([entry(5, 1, 20), entry(1, 2, 17), entry(5, 3, 30)]).unwrap();
        assert_eq!(index.len(), 3);
        let rows: Vec<IndexEntry> = index.get(&[5; 16]).map(|r| r.to_entry()).collect();
        assert_eq!(rows, [entry(5, 1, 20), entry(5, 3, 30)]);
        assert_eq!(index.get(&[1; 16]).count(), 1);
        assert_eq!(index.get(&[0; 16]).count(), 0);
        assert_eq!(index.get(&[9; 16]).count(), 0);
        assert!(IndexLookup::default().get(&[0; 16]).next().is_none());
    }

    #[test]
    fn merged_parts_hold_every_row_in_tag_order_and_find_them_all() {
        let a =
            IndexLookup::from_entries([entry(5, 1, 20), entry(1, 2, 17), entry(9, 3, 3)]).unwrap();
        let b = IndexLookup::from_entries([entry(5, 4, 18), entry(0, 5, 40)]).unwrap();
        let c = IndexLookup::default();
        let merged = IndexLookup::merge(&[&a, &c, &b]).unwrap();
        let rows: Vec<IndexEntry> = merged.iter().map(|r| r.to_entry()).collect();
        assert_eq!(
            rows,
            [
                entry(0, 5, 40),
                entry(1, 2, 17),
                entry(5, 1, 20),
                entry(5, 4, 18),
                entry(9, 3, 3)
            ]
        );
        let under_5: Vec<IndexEntry> = merged.get(&[5; 16]).map(|r| r.to_entry()).collect();
        assert_eq!(under_5, [entry(5, 1, 20), entry(5, 4, 18)]);
        // Allocated once, at the final size.
        assert_eq!(merged.arena.capacity(), merged.arena.len());
        assert_eq!(merged.tags.capacity(), 5);
    }

    #[test]
    fn every_tag_is_found_through_the_prefix_table_whatever_its_leading_bits() {
        // Tags spread over the whole range and bunched under a few prefixes, with tags
        // that are not there on either side of each.
        let mut tags: Vec<Tag> = (1..5_001u32)
            .map(|i| {
                let mut t = [0u8; 16];
                t[..4].copy_from_slice(&i.wrapping_mul(0x9E37_79B9).to_be_bytes());
                t[15] = 2;
                t
            })
            .collect();
        for lead in [0u8, 0x80, 0xff] {
            for i in 0..300u16 {
                let mut t = [lead; 16];
                t[14..].copy_from_slice(&(i * 2 + 2).to_be_bytes());
                tags.push(t);
            }
        }
        let index = IndexLookup::from_entries(tags.iter().map(|t| IndexEntry {
            tag: *t,
            nonce: [1; 24],
            sealed: vec![t[0]; 3],
        }))
        .unwrap();
        assert!(index.prefix_bits >= 10, "{}", index.prefix_bits);
        for t in &tags {
            assert_eq!(index.get(t).count(), 1, "{t:?}");
            for delta in [-1i16, 1] {
                let mut near = *t;
                near[15] = near[15].wrapping_add_signed(delta as i8);
                assert_eq!(index.get(&near).count(), 0, "{near:?}");
            }
        }
        assert_eq!(index.get(&[0; 16]).count(), 0);
        assert_eq!(index.get(&[0xff; 16]).count(), 0);
        // A merge and a removal keep the table right.
        let half = IndexLookup::from_entries(tags[..2_000].iter().map(|t| IndexEntry {
            tag: *t,
            nonce: [2; 24],
            sealed: vec![],
        }))
        .unwrap();
        let merged = IndexLookup::merge(&[&index, &half]).unwrap();
        assert_eq!(merged.get(&tags[10]).count(), 2);
        assert_eq!(merged.get(&tags[4_000]).count(), 1);
        let kept = merged.retained(|r| r.nonce == &[2; 24]);
        assert_eq!(kept.get(&tags[10]).count(), 1);
        assert_eq!(kept.get(&tags[4_000]).count(), 0);
    }

    #[test]
    fn deltas_add_and_remove_rows() {
        let index = IndexLookup::from_entries([entry(5, 1, 20)]).unwrap();
        let index = index.extend([entry(2, 2, 20), entry(5, 3, 16)]).unwrap();
        assert_eq!(index.len(), 3);
        let index = index.retained(|r| !(r.tag == &[5; 16] && r.nonce == &[1; 24]));
        let rows: Vec<IndexEntry> = index.iter().map(|r| r.to_entry()).collect();
        assert_eq!(rows, [entry(2, 2, 20), entry(5, 3, 16)]);
    }
}
