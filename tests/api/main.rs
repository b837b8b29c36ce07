//! Black-box tests: the real binary, a temporary data folder, HTTP and the CLI. One test binary
//! for the whole suite (faster to link on small machines).

mod accounts;
mod accounts_admin;
mod aggregate;
mod attachments;
mod backend;
mod brute_force;
mod bulk;
mod bulk_replay;
mod bulk_turns;
mod console;
mod durability;
mod errors;
mod fidelity;
mod helpers;
mod hostile;
mod idempotency;
mod import;
mod in_process;
mod input_limits;
mod integrations;
mod lifecycle;
mod networks;
mod openapi;
mod postgres;
mod publish;
mod queries;
mod roles;
mod scripts;
mod scripts_bulk;
mod stats;
mod table;
mod tls;
mod transfer;
mod two_nodes;
mod xml;
