//! Paging of the console's lists: fixed-size pages and bounded counts. A list counts its matches
//! only up to [`COUNT_UP_TO`] (or to the page shown, when further): an exact count of a big table
//! is a scan of it on every render, so beyond the bound a page says "more than".

/// Rows per page.
pub const PAGE_SIZE: u64 = 50;
/// How far a list's matches are counted.
pub const COUNT_UP_TO: u64 = 1_000;

/// The page asked for (1 when none), where it starts and how far its count goes.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub page: u64,
    pub offset: u64,
    pub count_up_to: u64,
}

impl Window {
    pub fn of(page: Option<u64>) -> Self {
        let page = page.unwrap_or(1).max(1);
        let offset = (page - 1).saturating_mul(PAGE_SIZE);
        Self { page, offset, count_up_to: COUNT_UP_TO.max(offset.saturating_add(PAGE_SIZE)) }
    }

    /// The first page (a list that cannot go as deep as asked starts over).
    pub fn first() -> Self {
        Self::of(None)
    }
}

/// How many match, as far as they were counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub total: u64,
    /// More match than `total` (they were not all counted).
    pub more: bool,
}

impl Counted {
    /// A store's bounded count (`ListQuery::count_up_to = bound`), which may go past the bound.
    pub fn of(count: u64, bound: u64) -> Self {
        Self { total: count.min(bound), more: count > bound }
    }

    /// Two lists' counts together.
    pub fn plus(self, other: Self) -> Self {
        Self { total: self.total + other.total, more: self.more || other.more }
    }
}

/// What the pager of a list shows (`templates/console/pager.html`): "1–50 of more than 1000",
/// and Previous/Next links that keep the list's other parameters.
#[derive(Debug, Clone)]
pub struct Pager {
    /// Matches counted (at most the window's bound).
    pub total: u64,
    /// More match than `total` (they were not all counted).
    pub more: bool,
    pub page: u64,
    pub pages: u64,
    pub first: u64,
    pub last: u64,
    /// The list's query string without its page (`?state=error&integration=`).
    query: String,
}

impl Pager {
    /// The pager of `window` with `counted` matches and `shown` rows on this page.
    pub fn new(window: Window, counted: Counted, shown: usize, query: String) -> Self {
        let Counted { total, more } = counted;
        let shown = u64::try_from(shown).unwrap_or(0);
        Self {
            total,
            more,
            page: window.page,
            pages: total.div_ceil(PAGE_SIZE).max(1),
            first: if shown == 0 { 0 } else { window.offset + 1 },
            last: window.offset + shown,
            query,
        }
    }

    /// The query string of another page of the same list.
    pub fn link(&self, page: &u64) -> String {
        format!("{}&page={page}", self.query)
    }
}

/// A count as a page says it: "more than N" past the bound `N`.
pub fn bounded(count: u64, bound: u64) -> String {
    if count > bound { format!("more than {bound}") } else { count.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_pagers() {
        let w = Window::of(Some(3));
        assert_eq!((w.page, w.offset, w.count_up_to), (3, 100, 1_000));
        assert_eq!(Window::of(Some(0)).page, 1);
        assert_eq!(Window::of(Some(40)).count_up_to, 2_000, "a deep page is counted to its end");
        let p = Pager::new(w, Counted::of(1_001, w.count_up_to), 50, "?q=x".into());
        assert_eq!((p.total, p.more, p.pages, p.first, p.last), (1_000, true, 20, 101, 150));
        assert_eq!(p.link(&4), "?q=x&page=4");
        let empty = Pager::new(Window::first(), Counted::default(), 0, String::new());
        let both = Counted::of(1_000, 1_000).plus(Counted::of(5, 1_000));
        assert_eq!(both, Counted { total: 1_005, more: false });
        assert_eq!((empty.total, empty.pages, empty.first, empty.last), (0, 1, 0, 0));
        assert_eq!((bounded(1_000, 1_000), bounded(1_001, 1_000)), ("1000".into(), "more than 1000".into()));
    }
}
