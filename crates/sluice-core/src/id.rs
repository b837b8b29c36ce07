//! `sys_id`: 32 lowercase hex characters, like ServiceNow's GUIDs without dashes.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SysId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a sys_id is 32 lowercase hexadecimal characters")]
pub struct InvalidSysId;

impl SysId {
    /// A new id: 48 bits of milliseconds then 80 random bits, so ids created later sort later and
    /// B-tree inserts stay at the right edge (like UUID v7), while remaining unguessable.
    pub fn generate() -> Self {
        let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let mut bytes = [0u8; 16];
        bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
        random_fill(&mut bytes[6..]);
        Self(hex(&bytes))
    }

    pub fn parse(s: &str) -> Result<Self, InvalidSysId> {
        if Self::is_valid(s) { Ok(Self(s.to_owned())) } else { Err(InvalidSysId) }
    }

    pub fn is_valid(s: &str) -> bool {
        s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Bytes from the operating system's random source, read 1 KiB at a time: one `getrandom`
/// system call per id was a measurable share of a write (an incident takes ~20 ids).
fn random_fill(out: &mut [u8]) {
    use std::cell::RefCell;
    const POOL: usize = 1024;
    thread_local! {
        static BUFFER: RefCell<([u8; POOL], usize)> = const { RefCell::new(([0; POOL], POOL)) };
    }
    BUFFER.with(|cell| {
        let (pool, used) = &mut *cell.borrow_mut();
        if *used + out.len() > POOL {
            getrandom::fill(pool).expect("the operating system's random source failed");
            *used = 0;
        }
        out.copy_from_slice(&pool[*used..*used + out.len()]);
        // Handed-out bytes are wiped so the buffer never holds a used id's randomness.
        pool[*used..*used + out.len()].fill(0);
        *used += out.len();
    });
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

impl fmt::Display for SysId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SysId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SysId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_valid_unique_and_time_ordered() {
        let a = SysId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = SysId::generate();
        assert!(SysId::is_valid(a.as_str()), "{a}");
        assert_ne!(a, b);
        assert!(a < b);
    }

    #[test]
    fn parse_rejects_wrong_shapes() {
        assert!(SysId::parse("5b2d8f0e1b4a22104c3e2f1ee54bcb11").is_ok());
        assert_eq!(SysId::parse("5B2D8F0E1B4A22104C3E2F1EE54BCB11"), Err(InvalidSysId));
        assert_eq!(SysId::parse("5b2d8f0e"), Err(InvalidSysId));
        assert_eq!(SysId::parse("zb2d8f0e1b4a22104c3e2f1ee54bcb11"), Err(InvalidSysId));
    }
}
