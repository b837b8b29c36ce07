//! Saved filters of the console's incidents list: a name, an encoded query and a sort, kept per
//! account in the database so any node serving the console shows them. The limits are checked
//! here, once for every backend ([`check`]); the per-account count inside the backend's write,
//! so two saves at once cannot pass it together.

use crate::{Result, async_trait};

/// Filters one account may keep.
pub const MAX_PER_ACCOUNT: u64 = 50;
/// Characters of a filter's name.
pub const MAX_NAME_CHARS: usize = 100;
/// Characters of its encoded query (the console's filter box takes as many).
pub const MAX_QUERY_CHARS: usize = 4000;
/// Characters of its sort (a column name, `-` before it).
pub const MAX_SORT_CHARS: usize = 100;

/// One saved filter as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedFilter {
    /// Assigned by the caller (a sys_id); kept when a save replaces a filter of the same name.
    pub id: String,
    /// The account's user name exactly as stored on the account.
    pub user_name: String,
    pub name: String,
    /// An encoded query (`sysparm_query`), kept as written.
    pub query: String,
    pub sort: String,
    /// Unix milliseconds of the (last) save.
    pub saved_ms: i64,
}

/// Why a filter was not saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterRefusal {
    #[error("give the filter a name")]
    NameEmpty,
    #[error("a filter name is at most {MAX_NAME_CHARS} characters")]
    NameTooLong,
    #[error("a saved filter's query is at most {MAX_QUERY_CHARS} characters")]
    QueryTooLong,
    #[error("a saved filter's sort is at most {MAX_SORT_CHARS} characters")]
    SortTooLong,
    #[error("an account keeps at most {MAX_PER_ACCOUNT} saved filters: delete one first")]
    TooMany,
}

/// What a save did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveFilter {
    /// Stored; `replaced` when the account had a filter of that name (its id is kept).
    Saved {
        id: String,
        replaced: bool,
    },
    Refused(FilterRefusal),
}

/// The limits every backend applies before writing (the count is the backend's).
pub fn check(filter: &SavedFilter) -> std::result::Result<(), FilterRefusal> {
    if filter.name.trim().is_empty() {
        return Err(FilterRefusal::NameEmpty);
    }
    if filter.name.chars().count() > MAX_NAME_CHARS {
        return Err(FilterRefusal::NameTooLong);
    }
    if filter.query.chars().count() > MAX_QUERY_CHARS {
        return Err(FilterRefusal::QueryTooLong);
    }
    if filter.sort.chars().count() > MAX_SORT_CHARS {
        return Err(FilterRefusal::SortTooLong);
    }
    Ok(())
}

/// Saved filters, shared by every node.
#[async_trait]
pub trait SavedFilters: Send + Sync {
    /// Stores a filter, replacing the account's filter of the same name (names compare
    /// exactly); refused past the limits.
    async fn save_filter(&self, filter: SavedFilter) -> Result<SaveFilter>;
    /// The account's filters by name.
    async fn saved_filters(&self, user_name: String) -> Result<Vec<SavedFilter>>;
    /// Deletes one filter of the account; whether it had it.
    async fn delete_saved_filter(&self, user_name: String, id: String) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(name: &str, query: &str) -> SavedFilter {
        SavedFilter {
            id: "1".into(),
            user_name: "a".into(),
            name: name.into(),
            query: query.into(),
            sort: String::new(),
            saved_ms: 0,
        }
    }

    #[test]
    fn limits() {
        assert_eq!(check(&filter("P1", "priority=1")), Ok(()));
        assert_eq!(check(&filter("  ", "")), Err(FilterRefusal::NameEmpty));
        assert_eq!(check(&filter(&"é".repeat(MAX_NAME_CHARS), "")), Ok(()));
        assert_eq!(check(&filter(&"é".repeat(MAX_NAME_CHARS + 1), "")), Err(FilterRefusal::NameTooLong));
        assert_eq!(check(&filter("q", &"x".repeat(MAX_QUERY_CHARS + 1))), Err(FilterRefusal::QueryTooLong));
    }
}
