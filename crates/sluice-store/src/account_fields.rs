//! How an account is stored in `sys_user` and how a change to it reads in the admin audit: the
//! same on every backend (only the statements around it differ).

use serde_json::{Map, Value, json};
use sluice_core::DateTime;
use sluice_core::account::{Account, AccountRate, IpNet, Role, format_networks, format_roles};

pub fn read_rate(per_second: &str, burst: &str) -> Option<AccountRate> {
    Some(AccountRate { per_second: per_second.parse().ok()?, burst: burst.parse().ok()? })
}

/// The stored columns of a rate: two numbers, or two empty texts for the server's default.
pub fn rate_texts(rate: Option<AccountRate>) -> (String, String) {
    rate.map_or_else(Default::default, |r| (r.per_second.to_string(), r.burst.to_string()))
}

pub fn rate_json(rate: Option<AccountRate>) -> Value {
    rate.map_or(Value::Null, |r| json!({"per_second": r.per_second, "burst": r.burst}))
}

pub fn networks_json(networks: &[IpNet]) -> Value {
    networks.iter().map(ToString::to_string).collect()
}

pub fn is_admin(a: &Account) -> bool {
    a.active && a.roles.contains(&Role::Admin)
}

pub fn role_names(roles: &[Role]) -> Vec<&'static str> {
    roles.iter().map(|r| r.as_str()).collect()
}

pub fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

pub fn datetime(text: String) -> DateTime {
    DateTime::parse(&text).unwrap_or(DateTime::from_unix(0))
}

/// An `AccountAction::Update` worked out against the account as it is.
pub struct Update {
    /// Whether the account is an active admin afterwards (the last admin must stay).
    pub after_admin: bool,
    /// The `sys_user` columns to set.
    pub set: Vec<(&'static str, String)>,
    /// The admin audit's details: each changed setting, from and to.
    pub details: Map<String, Value>,
}

pub fn update(
    before: &Account,
    active: Option<bool>,
    roles: Option<&[Role]>,
    web_service_only: Option<bool>,
    networks: Option<&[IpNet]>,
    rate: Option<Option<AccountRate>>,
) -> Update {
    let after_roles = roles.map(|r| {
        let mut r = r.to_vec();
        r.sort();
        r.dedup();
        r
    });
    let after_admin =
        active.unwrap_or(before.active) && after_roles.as_ref().unwrap_or(&before.roles).contains(&Role::Admin);
    let mut set = Vec::new();
    let mut details = Map::new();
    if let Some(a) = active {
        set.push(("active", bool_text(a).to_owned()));
        details.insert("active".into(), json!({"from": before.active, "to": a}));
    }
    if let Some(r) = &after_roles {
        set.push(("roles", format_roles(r)));
        details.insert("roles".into(), json!({"from": role_names(&before.roles), "to": role_names(r)}));
    }
    if let Some(w) = web_service_only {
        set.push(("web_service_access_only", bool_text(w).to_owned()));
        details.insert("web_service_only".into(), json!({"from": before.web_service_only, "to": w}));
    }
    if let Some(n) = networks {
        set.push(("source_networks", format_networks(n)));
        details
            .insert("networks".into(), json!({"from": networks_json(&before.policy.networks), "to": networks_json(n)}));
    }
    if let Some(r) = rate {
        let (per_second, burst) = rate_texts(r);
        set.push(("rate_per_second", per_second));
        set.push(("rate_burst", burst));
        details.insert("rate".into(), json!({"from": rate_json(before.policy.rate), "to": rate_json(r)}));
    }
    Update { after_admin, set, details }
}
