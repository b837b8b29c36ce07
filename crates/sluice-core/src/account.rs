//! Accounts that call sluice, their roles, and what each role may do.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

pub use crate::network::{InvalidNetwork, IpNet, format_networks, parse_network, parse_networks};

use crate::id::SysId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Everything.
    Admin,
    /// Reads and writes incidents; reads users, groups and CIs.
    Itil,
    /// Only the Import Set API.
    ImportSetLoader,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Itil, Role::ImportSetLoader];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Itil => "itil",
            Self::ImportSetLoader => "import_set_loader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role {0:?}: use admin, itil or import_set_loader")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Parses the stored comma-separated role list, skipping anything unknown.
pub fn parse_roles(list: &str) -> Vec<Role> {
    let mut roles: Vec<Role> = list.split(',').filter_map(|r| r.trim().parse().ok()).collect();
    roles.sort();
    roles.dedup();
    roles
}

pub fn format_roles(roles: &[Role]) -> String {
    roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
}

/// A user name: 1–40 characters of letters, digits and `._@-`. Parsed once at the edge.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a user name is 1 to 40 characters: letters, digits, '.', '_', '@' or '-'")]
pub struct InvalidUserName;

impl UserName {
    pub fn parse(s: &str) -> Result<Self, InvalidUserName> {
        let ok = (1..=40).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-'));
        if ok { Ok(Self(s.to_owned())) } else { Err(InvalidUserName) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password for a new account: at least 12 characters, at most 1024 bytes.
pub struct Password(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a password is at least 12 characters and at most 1024 bytes")]
pub struct WeakPassword;

impl Password {
    pub fn parse(s: &str) -> Result<Self, WeakPassword> {
        if s.chars().count() >= 12 && s.len() <= 1024 { Ok(Self(s.to_owned())) } else { Err(WeakPassword) }
    }

    /// 24 random characters from an unambiguous alphabet (about 137 bits).
    pub fn generate() -> Self {
        const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        // 256 % 57 leaves a small bias; acceptable for a 24-character secret.
        Self(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// An account as the authentication step sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub sys_id: SysId,
    pub user_name: String,
    pub roles: Vec<Role>,
    pub active: bool,
    pub password_hash: String,
    /// API use only, never a console session (`sys_user.web_service_access_only`).
    pub web_service_only: bool,
    /// Raised by every change to the account (password, active, roles, deletion); a cached
    /// password verification is trusted only while the stored version still matches.
    pub credentials_version: i64,
    /// Where the account may call from and how fast.
    pub policy: AccountPolicy,
}

impl Account {
    /// Whether a request from `ip` may use this account (no networks: from anywhere).
    pub fn allows_source(&self, ip: IpAddr) -> bool {
        self.policy.allows_source(ip)
    }
}

/// An account's own source networks and rate limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountPolicy {
    /// Networks (CIDR, IPv4 or IPv6) the account may call from; empty: anywhere.
    pub networks: Vec<IpNet>,
    /// The account's own token bucket; `None`: the server's `--rate-per-account` default.
    pub rate: Option<AccountRate>,
}

impl AccountPolicy {
    pub fn allows_source(&self, ip: IpAddr) -> bool {
        crate::network::allows_source(&self.networks, ip)
    }
}

/// Requests per second and the burst above it, in whole requests. A rate of 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountRate {
    pub per_second: u32,
    pub burst: u32,
}

/// What a request wants to do with a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    /// Post rows through the Import Set API.
    Import,
}

/// The built-in access policy (servicenow-wire.md §7.3).
pub fn may(roles: &[Role], table: &str, access: Access) -> bool {
    if roles.contains(&Role::Admin) {
        return true;
    }
    match access {
        Access::Import => roles.contains(&Role::ImportSetLoader),
        Access::Write => roles.contains(&Role::Itil) && table == crate::tables::INCIDENT,
        Access::Read => {
            roles.contains(&Role::Itil)
                && matches!(table, "incident" | "sys_user" | "sys_user_group" | "cmdb_ci" | "sys_choice")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_ones_are_refused() {
        assert_eq!(parse_roles("itil, admin,itil,bogus"), vec![Role::Admin, Role::Itil]);
        assert_eq!(format_roles(&[Role::Admin, Role::ImportSetLoader]), "admin,import_set_loader");
        assert_eq!("root".parse::<Role>(), Err(UnknownRole("root".into())));
    }

    #[test]
    fn policy() {
        assert!(may(&[Role::Admin], "sys_audit", Access::Read));
        assert!(may(&[Role::ImportSetLoader], "u_incident_import", Access::Import));
        assert!(!may(&[Role::ImportSetLoader], "incident", Access::Read));
        assert!(may(&[Role::Itil], "incident", Access::Write));
        assert!(!may(&[Role::Itil], "sys_user", Access::Write));
        assert!(!may(&[Role::Itil], "sys_audit", Access::Read));
        assert!(may(&[Role::Itil], "sys_choice", Access::Read), "choice lists are read by every client");
        assert!(!may(&[Role::Itil], "u_incident_import", Access::Import));
    }

    #[test]
    fn user_names_and_passwords_are_parsed_at_the_edge() {
        assert!(UserName::parse("integration.alerts").is_ok());
        assert!(UserName::parse("bad name").is_err());
        assert!(UserName::parse("").is_err());
        assert!(Password::parse("short").is_err());
        assert_eq!(Password::generate().expose().len(), 24);
    }

    #[test]
    fn an_account_policy_allows_its_networks_or_anywhere() {
        let nets: Vec<IpNet> = ["10.1.2.3/8", "192.0.2.7"].iter().map(|n| parse_network(n).unwrap()).collect();
        let policy = AccountPolicy { networks: nets, rate: None };
        assert!(policy.allows_source("::ffff:10.0.0.9".parse().unwrap()));
        assert!(!policy.allows_source("192.0.2.8".parse().unwrap()));
        assert!(AccountPolicy::default().allows_source("203.0.113.1".parse().unwrap()));
    }
}
