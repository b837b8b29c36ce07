//! The domain of sluice: records shaped like ServiceNow's, integration definitions, and the pure
//! steps of the intake pipeline (stage → validate → transform → business rules). No web or SQL
//! types live here; the store and the server depend on this crate, never the other way round.

pub mod account;
pub mod attachment;
pub mod contract;
pub mod datetime;
pub mod id;
pub mod incident;
pub mod integration;
pub mod network;
pub mod number;
pub mod payload;
pub mod query;
pub mod rules;
pub mod schema;
pub mod sender;
pub mod staging;
pub mod stats;
pub mod tables;
pub mod transform;
pub mod validate;

pub use datetime::DateTime;
pub use id::SysId;

/// A record as stored and as sent on the wire: every value is a string (ServiceNow's encoding);
/// empty means unset. Field kinds come from the table's [`schema::TableSchema`].
pub type Record = std::collections::BTreeMap<String, String>;
