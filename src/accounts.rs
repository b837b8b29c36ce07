//! `sluice account ...`: manage the accounts that call sluice, on the database directly (the
//! server may be running: the database serialises the writes, and a running server notices changed
//! credentials within seconds, see `sluice_server::authenticate`). Every change is recorded in
//! the admin audit as `cli:<os user>`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{ArgAction, Subcommand};
use sluice_core::DateTime;
use sluice_core::account::{
    Account, AccountPolicy, AccountRate, IpNet, Password, Role, UserName, format_networks, format_roles, parse_network,
};
use sluice_core::integration::SenderFormat;
use sluice_core::tables::{self, Catalog};
use sluice_server::hash_password;
use sluice_store::{AccountAction, AccountChange, Store, StoreError};

use crate::data::{DataArgs, open_store};

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account. Prints a generated password unless --password-stdin is given.
    Add {
        name: String,
        /// admin, itil or import_set_loader (repeatable).
        #[arg(long = "role", required = true, num_args = 1..)]
        roles: Vec<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// API use only, never a console session (sys_user.web_service_access_only).
        #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "true|false")]
        web_service_only: bool,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Change an account's source networks or rate limit (what is not given stays as it is).
    Set {
        name: String,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Allow any source address again (clears the networks).
        #[arg(long, conflicts_with = "networks")]
        any_network: bool,
        /// Use the server's --rate-per-account default again.
        #[arg(long, conflicts_with_all = ["rate", "burst"])]
        default_rate: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List accounts.
    List {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show one account: roles, state, dates and API tokens (never the password hash).
    Show {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Disable an account: its password and tokens stop working (a running server: within seconds).
    Disable {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Enable a disabled account.
    Enable {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Give an account a new password: prints a generated one unless --password-stdin is given.
    Rotate {
        name: String,
        /// Read the new password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Create an API token for an account (a Bearer token), or with --integration a routing key
    /// of a PagerDuty Events API v2 integration. Prints it once: only its digest is stored.
    Token {
        name: String,
        /// What it is for (shown in lists; at most 100 characters).
        #[arg(long, default_value = "")]
        label: String,
        /// A routing key of this integration (format pagerduty-events-v2) instead of a Bearer token.
        #[arg(long)]
        integration: Option<String>,
        /// Folder of integration definitions (*.toml), as the server is given; the built-in
        /// integrations when unset.
        #[arg(long, env = "SLUICE_INTEGRATIONS")]
        integrations: Option<PathBuf>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Revoke one of an account's API tokens or routing keys (its id, from `account show`).
    RevokeToken {
        name: String,
        id: String,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Delete an account: its credentials, roles and tokens go; the user record stays for history.
    Delete {
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// An account's own source networks and rate limit.
#[derive(clap::Args)]
pub struct PolicyArgs {
    /// A network the account may call from: CIDR (10.0.0.0/8, 2001:db8::/32) or one address.
    /// Repeatable; replaces the account's list. None: from anywhere.
    #[arg(long = "network", value_name = "CIDR")]
    networks: Vec<String>,
    /// The account's own limit in requests per second (0: none), instead of the server's default.
    #[arg(long, requires = "burst")]
    rate: Option<u32>,
    /// Burst above --rate.
    #[arg(long, requires = "rate")]
    burst: Option<u32>,
}

impl PolicyArgs {
    fn networks(&self) -> anyhow::Result<Vec<IpNet>> {
        Ok(self.networks.iter().map(|n| parse_network(n)).collect::<Result<_, _>>()?)
    }

    fn rate(&self) -> Option<AccountRate> {
        Some(AccountRate { per_second: self.rate?, burst: self.burst? })
    }
}

/// Who the admin audit names for a change from the command line: `cli:<os user>`, or `cli`.
pub(crate) fn cli_actor() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME", "USERNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty() && u.len() <= 64 && u.chars().all(|c| c.is_ascii_graphic()));
    match user {
        Some(u) => format!("cli:{u}"),
        None => "cli".into(),
    }
}

/// A password from standard input (one line; the newline is not part of it), or a generated one.
fn new_password(from_stdin: bool) -> anyhow::Result<(Password, bool)> {
    if from_stdin {
        let mut input = String::new();
        std::io::stdin().read_to_string(&mut input)?;
        Ok((Password::parse(input.trim_end_matches(['\r', '\n']))?, false))
    } else {
        Ok((Password::generate(), true))
    }
}

/// Applies one change and closes the store; a missing account is an error naming it.
async fn change(store: &dyn Store, name: &str, action: AccountAction) -> anyhow::Result<Account> {
    let change = AccountChange { user_name: name.to_owned(), action, by: cli_actor(), now: DateTime::now() };
    let result = store.change_account(change).await;
    store.close().await;
    match result {
        Ok(Some(account)) => Ok(account),
        Ok(None) => bail!("no account {name}"),
        Err(e @ StoreError::AccountExists(_)) => bail!("{e}"),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(cmd: AccountCommand) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Add { name, roles, password_stdin, web_service_only, policy, data } => {
            let user = UserName::parse(&name)?;
            let roles = roles.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>()?;
            let policy = AccountPolicy { networks: policy.networks()?, rate: policy.rate() };
            let (password, generated) = new_password(password_stdin)?;
            let store = open_store(&data).await?;
            let password_hash = hash_password(&password);
            let action = AccountAction::Create { roles, password_hash, web_service_only, policy };
            let account = change(store.as_ref(), user.as_str(), action).await?;
            println!("Created account {} with roles {}", account.user_name, format_roles(&account.roles));
            if generated {
                println!("Password: {}", password.expose());
            }
        }
        AccountCommand::List { data } => {
            let store = open_store(&data).await?;
            let accounts = store.accounts().await;
            store.close().await;
            println!("{:<40} {:<8} {:<8} ROLES", "USER NAME", "ACTIVE", "WS ONLY");
            for a in accounts? {
                println!("{:<40} {:<8} {:<8} {}", a.user_name, a.active, a.web_service_only, format_roles(&a.roles));
            }
        }
        AccountCommand::Show { name, data } => {
            let store = open_store(&data).await?;
            let shown = show(store.as_ref(), &name).await;
            store.close().await;
            shown?;
        }
        AccountCommand::Set { name, policy, any_network, default_rate, data } => {
            let networks =
                if any_network { Some(Vec::new()) } else { Some(policy.networks()?).filter(|n| !n.is_empty()) };
            let rate = if default_rate { Some(None) } else { policy.rate().map(Some) };
            if networks.is_none() && rate.is_none() {
                bail!("nothing to change: give --network, --any-network, --rate/--burst or --default-rate");
            }
            let store = open_store(&data).await?;
            let action = AccountAction::Update { active: None, roles: None, web_service_only: None, networks, rate };
            let account = change(store.as_ref(), &name, action).await?;
            println!("Changed account {}: {}", account.user_name, describe(&account.policy));
        }
        AccountCommand::Disable { name, data } => set_active(&name, &data, false).await?,
        AccountCommand::Enable { name, data } => set_active(&name, &data, true).await?,
        AccountCommand::Rotate { name, password_stdin, data } => {
            let (password, generated) = new_password(password_stdin)?;
            let store = open_store(&data).await?;
            let action = AccountAction::SetPassword { password_hash: hash_password(&password) };
            let account = change(store.as_ref(), &name, action).await?;
            println!("New password set for {}", account.user_name);
            if generated {
                println!("Password: {}", password.expose());
            }
        }
        AccountCommand::Token { name, label, integration, integrations, data } => {
            if label.chars().count() > 100 {
                bail!("a token label is at most 100 characters");
            }
            if let Some(integration) = &integration {
                routing_key_integration(integrations.as_deref(), integration)?;
            }
            let token = match integration {
                Some(_) => sluice_server::authenticate::new_routing_key(),
                None => sluice_server::authenticate::new_api_token(),
            };
            let id = sluice_core::SysId::generate().into_string();
            let digest = sluice_server::authenticate::token_digest(&token);
            let store = open_store(&data).await?;
            let action = AccountAction::AddToken { id: id.clone(), digest, label, integration: integration.clone() };
            let account = change(store.as_ref(), &name, action).await?;
            match integration {
                Some(i) => println!("Created routing key {id} of {} for integration {i}", account.user_name),
                None => println!("Created API token {id} of {}", account.user_name),
            }
            println!("Token: {token}");
        }
        AccountCommand::RevokeToken { name, id, data } => {
            let store = open_store(&data).await?;
            let by = cli_actor();
            let action = AccountAction::RevokeToken { id: id.clone() };
            let result =
                store.change_account(AccountChange { user_name: name.clone(), action, by, now: DateTime::now() });
            let result = result.await;
            store.close().await;
            match result? {
                Some(account) => println!("Revoked token {id} of {}", account.user_name),
                None => bail!("no token {id} of account {name}"),
            }
        }
        AccountCommand::Delete { name, data } => {
            let store = open_store(&data).await?;
            let account = change(store.as_ref(), &name, AccountAction::Delete).await?;
            println!("Deleted account {} (the user record stays for history)", account.user_name);
        }
    }
    Ok(())
}

/// Checks that `name` is an integration routing keys are for (format pagerduty-events-v2).
fn routing_key_integration(dir: Option<&Path>, name: &str) -> anyhow::Result<()> {
    let integrations = crate::integrations::load(dir, &Catalog::builtin())?;
    match integrations.iter().find(|i| i.name() == name) {
        Some(i) if i.format() == SenderFormat::PagerdutyEventsV2 => Ok(()),
        Some(i) => {
            bail!("integration {name} has format {}: routing keys are for format pagerduty-events-v2", i.format())
        }
        None => bail!("no integration named {name}"),
    }
}

async fn set_active(name: &str, data: &DataArgs, active: bool) -> anyhow::Result<()> {
    let store = open_store(data).await?;
    let action =
        AccountAction::Update { active: Some(active), roles: None, web_service_only: None, networks: None, rate: None };
    let account = change(store.as_ref(), name, action).await?;
    println!("{} account {}", if active { "Enabled" } else { "Disabled" }, account.user_name);
    Ok(())
}

/// Networks and rate, for people.
fn describe(policy: &AccountPolicy) -> String {
    let networks =
        if policy.networks.is_empty() { "any network".to_owned() } else { format_networks(&policy.networks) };
    let rate = match policy.rate {
        Some(r) => format!("{} requests/s, burst {}", r.per_second, r.burst),
        None => "the server's default rate".to_owned(),
    };
    format!("{networks}; {rate}")
}

async fn show(store: &dyn Store, name: &str) -> anyhow::Result<()> {
    let account = store.account(name.to_owned()).await?.with_context(|| format!("no account {name}"))?;
    let schema = Catalog::builtin().get(tables::SYS_USER).cloned().expect("built-in table");
    let user = store.get(schema, account.sys_id.as_str().to_owned()).await?.unwrap_or_default();
    let field = |f: &str| user.get(f).cloned().unwrap_or_default();
    println!("name:                   {}", account.user_name);
    println!("sys_id:                 {}", account.sys_id);
    println!("roles:                  {}", format_roles(&account.roles));
    println!("active:                 {}", account.active);
    println!("web_service_only:       {}", account.web_service_only);
    println!("policy:                 {}", describe(&account.policy));
    println!("created_on:             {}", field("sys_created_on"));
    println!("created_by:             {}", field("sys_created_by"));
    println!("updated_on:             {}", field("sys_updated_on"));
    println!("credentials_changed_at: {}", field("credentials_changed_at"));
    let tokens = store.tokens(name.to_owned()).await?;
    println!("tokens:                 {}", tokens.len());
    for t in tokens {
        let use_ = t.integration.map_or_else(|| "Bearer token".to_owned(), |i| format!("routing key of {i}"));
        println!("  {}  {}  {}  created {} by {}", t.id, use_, t.label, t.created_on, t.created_by);
    }
    Ok(())
}
