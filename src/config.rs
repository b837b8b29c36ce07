//! `--config FILE` (or `SLUICE_CONFIG`): a TOML file of settings, one key per flag of the
//! commands (`listen = "0.0.0.0:8080"`, `rate_per_ip = 50`, `trusted_proxy = ["10.0.0.0/8"]`).
//! The file's values become the flags' defaults before the command line is parsed, so the
//! precedence is: a flag on the command line, then its `SLUICE_*` variable, then the file, then
//! the built-in default (docs/configuration.md). `sluice check-config` prints each setting with
//! where it came from.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Command;

/// The variable naming the file when `--config` is not given.
pub const ENV: &str = "SLUICE_CONFIG";

/// A configuration file as read: key (as the flag's long name, `max-body-bytes`) → value as the
/// flag would take it.
#[derive(Debug, Default)]
pub struct ConfigFile {
    pub path: Option<PathBuf>,
    pub values: BTreeMap<String, String>,
}

/// The file named by `--config FILE` / `--config=FILE` in `args`, else by `SLUICE_CONFIG`.
pub fn find(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    std::env::var_os(ENV).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// Reads and checks `path`: a flat table whose keys are flags of some command (`-` or `_`
/// alike) and whose values are strings, numbers, booleans or arrays of them.
pub fn read(path: &Path, cli: &Command) -> anyhow::Result<ConfigFile> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the configuration {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", path.display()))?;
    let known = flags(cli);
    let mut values = BTreeMap::new();
    let mut problems = Vec::new();
    for (key, value) in table {
        let flag = key.replace('_', "-");
        if flag == "config" || !known.contains_key(&flag) {
            problems.push(format!("{key}: not a setting (see `sluice serve --help`; keys are the flags without --)"));
            continue;
        }
        match flag_value(&value) {
            Some(v) => {
                values.insert(flag, v);
            }
            None => problems.push(format!("{key}: give a string, a number, true/false or an array of them")),
        }
    }
    if !problems.is_empty() {
        bail!("{}:\n  {}", path.display(), problems.join("\n  "));
    }
    Ok(ConfigFile { path: Some(path.to_owned()), values })
}

/// A TOML value as the flag's text; arrays joined with commas (the repeatable flags take lists).
fn flag_value(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => {
            let parts =
                items.iter().map(|v| if v.is_array() { None } else { flag_value(v) }).collect::<Option<Vec<_>>>()?;
            Some(parts.join(","))
        }
        toml::Value::Datetime(_) | toml::Value::Table(_) => None,
    }
}

/// Every long flag of every command, with the commands that have it.
fn flags(cli: &Command) -> BTreeMap<String, Vec<String>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    fn walk(cmd: &Command, path: &str, found: &mut BTreeMap<String, Vec<String>>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                found.entry(long.to_owned()).or_default().push(path.to_owned());
            }
        }
        for sub in cmd.get_subcommands() {
            walk(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }
    walk(cli, cli.get_name(), &mut found);
    found
}

/// `cli` with the file's values as the defaults of the flags they name, in every command that
/// has the flag (so `data` serves `serve`, `account` and `replay` alike).
pub fn apply(cli: Command, file: &ConfigFile) -> Command {
    fn set(cmd: Command, values: &BTreeMap<String, String>) -> Command {
        let ids: Vec<(String, String)> = cmd
            .get_arguments()
            .filter_map(|a| {
                let value = values.get(a.get_long()?)?;
                Some((a.get_id().to_string(), value.clone()))
            })
            .collect();
        let mut cmd = ids.into_iter().fold(cmd, |cmd, (id, value)| {
            // clap keeps defaults as `&'static str` (without its `string` feature); the file is
            // read once per process, so its few values live as long as the process anyway. A
            // repeatable flag takes the file's list as one comma-separated default.
            let value: &'static str = Box::leak(value.into_boxed_str());
            cmd.mut_arg(id, |a| a.default_value(value).required(false))
        });
        let subs: Vec<String> = cmd.get_subcommands().map(|s| s.get_name().to_owned()).collect();
        for name in subs {
            cmd = cmd.mut_subcommand(name, |s| set(s, values));
        }
        cmd
    }
    set(cli, &file.values)
}

/// Where a setting's value came from, for `check-config`.
pub fn source(matches: &clap::ArgMatches, id: &str, long: &str, file: &ConfigFile) -> &'static str {
    match matches.value_source(id) {
        Some(clap::parser::ValueSource::CommandLine) => "flag",
        Some(clap::parser::ValueSource::EnvVariable) => "environment",
        Some(clap::parser::ValueSource::DefaultValue) if file.values.contains_key(long) => "file",
        Some(_) => "default",
        None => "unset",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_flag_text_and_lists_are_comma_separated() {
        let v = |s: &str| flag_value(&toml::from_str::<toml::Table>(&format!("k = {s}")).unwrap()["k"]);
        assert_eq!(v("\"x\"").as_deref(), Some("x"));
        assert_eq!(v("50").as_deref(), Some("50"));
        assert_eq!(v("2.5").as_deref(), Some("2.5"));
        assert_eq!(v("true").as_deref(), Some("true"));
        assert_eq!(v("[\"10.0.0.0/8\", \"::1/128\"]").as_deref(), Some("10.0.0.0/8,::1/128"));
        assert_eq!(v("{ a = 1 }"), None);
        assert_eq!(v("[[1]]"), None);
    }

    #[test]
    fn the_file_is_named_by_the_flag_in_either_spelling() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(find(&args(&["sluice", "serve", "--config", "a.toml"])), Some(PathBuf::from("a.toml")));
        assert_eq!(find(&args(&["sluice", "--config=b.toml", "serve"])), Some(PathBuf::from("b.toml")));
    }
}
