//! Keyset pagination: lists are ordered by id (UUIDv7 and event ids sort by creation time), and
//! a page resumes after the last id of the previous one, so inserts never shift or repeat rows.

/// Which page to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// At most this many rows (the API keeps it within 1–100).
    pub limit: u32,
    /// Resume after this id (exclusive); `None` starts at the beginning.
    pub after: Option<String>,
}

/// One page of rows and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// The id to resume after, when more rows follow.
    pub next_after: Option<String>,
}

impl PageRequest {
    /// The lower bound for `id > $n` ("" sorts before every id).
    pub(crate) fn after_bound(&self) -> &str {
        self.after.as_deref().unwrap_or("")
    }

    /// Rows to fetch: one more than the limit, to learn whether another page follows.
    pub(crate) fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts the fetched rows to the limit and works out the next cursor.
    pub(crate) fn finish<T>(&self, mut rows: Vec<T>, id_of: impl Fn(&T) -> String) -> Page<T> {
        let limit = self.limit as usize;
        let next_after = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(&id_of)
        } else {
            None
        };
        Page { items: rows, next_after }
    }
}
