use super::*;

#[test]
fn networks_follow_the_account_rule() {
    let text = DEFAULT_DEFINITION.replace(
        "target_table = \"incident\"",
        "target_table = \"incident\"\nnetworks = [\"10.1.0.0/16\", \"2001:db8::/32\", \"192.0.2.7\"]",
    );
    let i = Integration::parse(&text, "n.toml", &Catalog::builtin()).unwrap();
    assert!(i.allows_source("10.1.2.3".parse().unwrap()));
    assert!(i.allows_source("::ffff:10.1.9.9".parse().unwrap()));
    assert!(!i.allows_source("10.2.0.1".parse().unwrap()));
    assert!(i.allows_source("2001:db8::1".parse().unwrap()));
    assert!(!i.allows_source("2001:db9::1".parse().unwrap()));
    assert!(i.allows_source("192.0.2.7".parse().unwrap()), "a single address is a /32");
    let wrong = DEFAULT_DEFINITION
        .replace("target_table = \"incident\"", "target_table = \"incident\"\nnetworks = [\"10.0.0.0/99\"]");
    let problems = Integration::parse(&wrong, "n.toml", &Catalog::builtin()).unwrap_err();
    assert_eq!(problems[0].key, "networks[0]");
    assert_eq!(problems[0].message, "\"10.0.0.0/99\" is not a CIDR network such as 10.0.0.0/8 or 2001:db8::/32");
}

#[test]
fn the_builtin_default_is_valid() {
    let i = Integration::builtin_default(&Catalog::builtin());
    assert_eq!(i.definition.staging_table, "u_incident_import");
    assert!(i.staging.field("u_short_description").is_some());
    assert!(i.staging.field("sys_import_state").is_some());
}

#[test]
fn every_problem_is_reported_with_its_key() {
    let text = r#"
name = "Bad Name"
version = "1"
staging_table = "incident"
target_table = "incident"
[[fields]]
name = "u_a"
type = "choice"
[transform]
name = "m"
coalesce = ["correlation_id"]
[[transform.field_map]]
source = "u_missing"
target = "nonexistent"
"#;
    let problems = Integration::parse(text, "bad.toml", &Catalog::builtin()).unwrap_err();
    let keys: Vec<_> = problems.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.contains(&"name"), "{problems:?}");
    assert!(keys.contains(&"staging_table"), "{problems:?}");
    assert!(keys.iter().any(|k| k.starts_with("fields[0]")), "{problems:?}");
    assert!(keys.iter().any(|k| k.starts_with("transform.field_map[0]")), "{problems:?}");
    assert!(keys.contains(&"transform.coalesce[0]"), "{problems:?}");
    assert!(problems.iter().all(|p| p.file == "bad.toml"));
}

#[test]
fn unknown_keys_are_errors_not_silent_defaults() {
    let text = DEFAULT_DEFINITION.replace("coalesce_active_only", "coalesce_activ_only");
    let problems = Integration::parse(&text, "typo.toml", &Catalog::builtin()).unwrap_err();
    assert!(problems[0].message.contains("coalesce_activ_only"), "{problems:?}");
}

#[test]
fn a_reference_target_needs_a_lookup() {
    let text = DEFAULT_DEFINITION.replace(
        "reference = { match = [\"name\"], on_unknown = \"ignore\" }\n\n[[transform.field_map]]\nsource = \"u_cmdb_ci\"",
        "\n[[transform.field_map]]\nsource = \"u_cmdb_ci\"",
    );
    let problems = Integration::parse(&text, "x.toml", &Catalog::builtin()).unwrap_err();
    assert!(problems[0].message.contains("assignment_group is a reference"), "{problems:?}");
}

#[test]
fn a_digest_needs_room_in_its_target_and_no_reference() {
    let with = |prefix: &str| {
        DEFAULT_DEFINITION.replace(
            "source = \"u_correlation_id\"\ntarget = \"correlation_id\"\n",
            &format!("source = \"u_correlation_id\"\ntarget = \"correlation_id\"\ntoo_long = \"digest\"\n{prefix}"),
        )
    };
    assert!(with("").contains("too_long"));
    Integration::parse(&with(&format!("prefix = \"{}\"\n", "p".repeat(29))), "ok.toml", &Catalog::builtin())
        .expect("100 = 29 + 71");
    let problems =
        Integration::parse(&with(&format!("prefix = \"{}\"\n", "p".repeat(30))), "x.toml", &Catalog::builtin())
            .unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        problems[0].message, "correlation_id holds 100 characters: too few for a digest (101 with the prefix)",
        "{problems:?}"
    );
}

#[test]
fn scripts_are_carried_as_text_and_checked_strictly() {
    let with = |table: &str| format!("{DEFAULT_DEFINITION}\n{table}");
    let i = Integration::parse(
        &with("[scripts]\non_before = \"\"\"\ntarget.impact = '1';\n\"\"\"\non_after = \"status_message = 'ok';\"\n"),
        "s.toml",
        &Catalog::builtin(),
    )
    .unwrap();
    assert_eq!(i.on_before.as_deref(), Some("target.impact = '1';\n"));
    assert_eq!(i.on_after.as_deref(), Some("status_message = 'ok';"));
    let keys: Vec<_> = i.scripts().map(|(k, _)| k).collect();
    assert_eq!(keys, [ON_BEFORE_KEY, ON_AFTER_KEY]);
    assert_eq!(Integration::builtin_default(&Catalog::builtin()).scripts().count(), 0);

    let problems =
        Integration::parse(&with("[scripts]\non_befor = \"x\"\n"), "s.toml", &Catalog::builtin()).unwrap_err();
    assert!(problems[0].message.contains("on_befor"), "{problems:?}");
    let problems =
        Integration::parse(&with("[scripts]\non_after = \"  \"\n"), "s.toml", &Catalog::builtin()).unwrap_err();
    assert_eq!(problems[0].key, ON_AFTER_KEY);
}

#[test]
fn load_dir_with_reports_the_extra_check_with_the_other_problems() {
    let dir = std::env::temp_dir().join(format!("sluice-core-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("a.toml"), DEFAULT_DEFINITION).unwrap();
    let check = |i: &Integration| {
        vec![DefinitionProblem { file: i.origin.clone(), key: ON_BEFORE_KEY.into(), message: "nope".into() }]
    };
    let problems = Integration::load_dir_with(&dir, &Catalog::builtin(), &check).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(problems.len(), 1);
    assert!(problems[0].to_string().ends_with("a.toml: scripts.on_before: nope"), "{}", problems[0]);
}

#[test]
fn the_builtin_pagerduty_maps_severity_and_prefixes_the_dedup_key() {
    let catalog = Catalog::builtin();
    let all = Integration::builtin_defaults(&catalog);
    let pd = all.iter().find(|i| i.name() == "pagerduty").unwrap();
    assert_eq!(pd.format(), SenderFormat::PagerdutyEventsV2);
    assert!(pd.definition.transform.coalesce_skip_resolved);
    let plan = |severity: &str, dedup_key: &str| {
        let document = serde_json::json!({
            "event_action": "trigger", "dedup_key": dedup_key,
            "payload": {"summary": "HTTP down", "source": "srv01", "severity": severity,
                        "custom_details": {"ping": "timeout"}},
        });
        let serde_json::Value::Object(document) = document else { unreachable!() };
        let staged = crate::staging::stage(pd, &document);
        assert_eq!(staged.columns["u_custom_details"], r#"{"ping":"timeout"}"#);
        let row = crate::validate::validate(pd, &staged).unwrap();
        crate::transform::plan(pd, &row).unwrap()
    };
    let critical = plan("critical", "srv01/HTTP");
    assert_eq!(critical.set["correlation_id"], "pagerduty:srv01/HTTP");
    // Up to 90 characters the key is kept; a longer one (PagerDuty takes 255) is its digest.
    let at_most = "k".repeat(90);
    assert_eq!(plan("info", &at_most).set["correlation_id"], format!("pagerduty:{at_most}"));
    let long = plan("info", &"k".repeat(255)).set["correlation_id"].clone();
    assert_eq!(long.len(), 81, "{long}");
    assert!(long.starts_with("pagerduty:sha256:"), "{long}");
    assert_eq!(plan("info", &"k".repeat(255)).set["correlation_id"], long, "the same key, the same digest");
    assert_ne!(plan("info", &"j".repeat(255)).set["correlation_id"], long);
    assert!(critical.coalesce_skip_resolved);
    let levels = |p: &crate::transform::Plan| (p.set["impact"].clone(), p.set["urgency"].clone());
    assert_eq!(levels(&critical), ("1".into(), "1".into()));
    assert_eq!(levels(&plan("error", "srv01/HTTP")), ("1".into(), "2".into()));
    assert_eq!(levels(&plan("warning", "srv01/HTTP")), ("2".into(), "2".into()));
    assert_eq!(levels(&plan("info", "srv01/HTTP")), ("3".into(), "3".into()));
}

#[test]
fn the_builtin_alertmanager_reads_its_fields_by_pointer() {
    let catalog = Catalog::builtin();
    let all = Integration::builtin_defaults(&catalog);
    let am = all.iter().find(|i| i.name() == "alertmanager").unwrap();
    assert_eq!(am.format(), SenderFormat::Alertmanager);
    assert_eq!(am.field("u_correlation_key").unwrap().source.as_deref(), Some("/fingerprint"));
    let document = serde_json::json!({
        "status": "firing",
        "labels": {"alertname": "DiskFull", "severity": "critical"},
        "annotations": {"summary": "Disk full on db-01"},
        "fingerprint": "0123abcd",
    });
    let serde_json::Value::Object(document) = document else { unreachable!() };
    let staged = crate::staging::stage(am, &document);
    assert_eq!(staged.columns["u_alertname"], "DiskFull");
    assert_eq!(staged.columns["u_summary"], "Disk full on db-01");
    assert!(!staged.columns.contains_key("u_instance"), "a missing pointer leaves the field absent");
    let row = crate::validate::validate(am, &staged).unwrap();
    let plan = crate::transform::plan(am, &row).unwrap();
    assert_eq!(plan.set["correlation_id"], "alertmanager:0123abcd", "the field map's prefix");
    assert_eq!((plan.set["impact"].as_str(), plan.set["urgency"].as_str()), ("1", "1"));
}

#[test]
fn pointer_problems_name_the_file_and_the_field() {
    let catalog = Catalog::builtin();
    let bad = ALERTMANAGER_DEFINITION
        .replace("u_alertname = \"/labels/alertname\"", "u_alertname = \"labels/alertname\"\nu_nope = \"/x\"")
        .replace("format = \"alertmanager\"", "format = \"generic-json\"");
    let problems = Integration::parse(&bad, "am.toml", &catalog).unwrap_err();
    let found: Vec<(String, String)> = problems.iter().map(|p| (p.file.clone(), p.key.clone())).collect();
    assert_eq!(
        found,
        [
            ("am.toml".to_owned(), "pointers.u_alertname".to_owned()),
            ("am.toml".to_owned(), "pointers.u_nope".to_owned())
        ]
    );
    assert!(problems[0].message.contains("does not start with /"), "{}", problems[0].message);
    assert_eq!(problems[1].message, "u_nope is not one of the fields");

    let import_with_pointers = DEFAULT_DEFINITION
        .replace("target_table = \"incident\"", "target_table = \"incident\"\n[pointers]\nu_caller = \"/who\"\n");
    let problems = Integration::parse(&import_with_pointers, "i.toml", &catalog).unwrap_err();
    assert_eq!(problems[0].key, "pointers");
}

#[test]
fn sender_text_fields_take_objects_as_their_json_text_and_others_refuse_them() {
    let catalog = Catalog::builtin();
    // Correlating on the group's labels: an object at the pointer.
    let by_group =
        ALERTMANAGER_DEFINITION.replace("u_correlation_key = \"/fingerprint\"", "u_correlation_key = \"/groupLabels\"");
    let am = Integration::parse(&by_group, "am.toml", &catalog).unwrap();
    let document = serde_json::json!({
        "status": {"not": "a choice"},
        "labels": {"alertname": "DiskFull"},
        "groupLabels": {"alertname": "DiskFull", "team": "db"},
    });
    let staged = crate::staging::stage(&am, document.as_object().unwrap());
    assert_eq!(staged.columns["u_correlation_key"], r#"{"alertname":"DiskFull","team":"db"}"#);
    let errors = crate::contract::verdict_of(&am, &document, &staged).unwrap_err();
    let fields: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.code.as_str())).collect();
    assert_eq!(fields, [("u_status", "wrong_type")], "a choice field still takes single values only");

    let mut fine = document.clone();
    fine["status"] = serde_json::json!("firing");
    let staged = crate::staging::stage(&am, fine.as_object().unwrap());
    let plan = crate::contract::verdict_of(&am, &fine, &staged).unwrap();
    assert_eq!(plan.set["correlation_id"], r#"alertmanager:{"alertname":"DiskFull","team":"db"}"#);

    // The Import Set API's format keeps refusing objects in text fields.
    let nested = serde_json::json!({"u_short_description": {"a": 1}});
    let import = Integration::builtin_default(&catalog);
    let staged = crate::staging::stage(&import, nested.as_object().unwrap());
    let errors = crate::contract::verdict_of(&import, &nested, &staged).unwrap_err();
    assert_eq!(errors[0].code.as_str(), "wrong_type");
}

/// The built-in Alertmanager definition with a `[signature]` table.
fn signed(table: &str) -> String {
    format!("{ALERTMANAGER_DEFINITION}\n[signature]\n{table}\n")
}

/// A secret file in a fresh folder (core has no tempfile dev-dependency).
fn secret_file(test: &str, content: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-signature-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secret");
    std::fs::write(&path, content).unwrap();
    path
}

#[test]
fn a_signature_table_reads_its_secret_and_takes_defaults() {
    let path = secret_file("defaults", b"0123456789abcdef-grafana\n");
    let text = signed(&format!("secret_file = {:?}\naccount = \"grafana\"", path.display().to_string()));
    let i = Integration::parse(&text, "am.toml", &Catalog::builtin()).unwrap_or_else(|p| panic!("{p:#?}"));
    let s = i.signature.as_ref().unwrap();
    assert_eq!(s.header, "X-Sluice-Signature");
    assert_eq!(s.prefix, "");
    assert_eq!(s.timestamp_header, None);
    assert_eq!(s.tolerance, std::time::Duration::from_secs(300));
    assert_eq!(s.account, "grafana");
    assert!(s.required);
    assert_eq!(s.secret.expose(), b"0123456789abcdef-grafana", "one trailing line break is not the secret's");
    assert_eq!(format!("{:?}", s.secret), "Secret(24 bytes)");
    assert!(!format!("{i:?}").contains("abcdef-grafana"), "the secret is never printed");

    // Relative to the definition's folder; every key given.
    let origin = path.parent().unwrap().join("am.toml");
    let text = signed(
        "secret_file = \"secret\"\naccount = \"gh\"\nheader = \"X-Hub-Signature-256\"\nprefix = \"sha256=\"\n\
         timestamp_header = \"X-Ts\"\ntolerance_seconds = 60\nrequired = false",
    );
    let i = Integration::parse(&text, origin.to_str().unwrap(), &Catalog::builtin()).unwrap();
    let s = i.signature.unwrap();
    assert_eq!(
        (s.header.as_str(), s.prefix.as_str(), s.timestamp_header.as_deref()),
        ("X-Hub-Signature-256", "sha256=", Some("X-Ts"))
    );
    assert_eq!((s.tolerance.as_secs(), s.required), (60, false));
    assert_eq!(s.source, signature::SecretSource::File(path.clone()));
}

#[test]
fn bad_signature_tables_are_refused_naming_the_key_never_the_secret() {
    let problems = |table: &str| -> Vec<(String, String)> {
        Integration::parse(&signed(table), "am.toml", &Catalog::builtin())
            .unwrap_err()
            .into_iter()
            .map(|p| (p.key, p.message))
            .collect()
    };
    let unset = "SLUICE_TEST_SURELY_UNSET_SECRET_8D1F";
    assert_eq!(
        problems(&format!("secret_env = \"{unset}\"\naccount = \"grafana\"")),
        [("signature.secret_env".to_owned(), format!("environment variable {unset} is not set"))]
    );
    let short = secret_file("short", b"too-short");
    let found = problems(&format!("secret_file = {:?}\naccount = \"grafana\"", short.display().to_string()));
    assert_eq!(found[0].0, "signature.secret_file");
    assert!(found[0].1.contains("has 9 bytes: at least 16") && !found[0].1.contains("too-short"), "{found:?}");
    let found = problems("secret_file = \"/nonexistent/sluice/secret\"\naccount = \"grafana\"");
    assert_eq!(found[0].0, "signature.secret_file");
    assert!(found[0].1.starts_with("cannot read /nonexistent/sluice/secret"), "{found:?}");
    let found = problems("secret_env = \"X\"\nsecret_file = \"y\"\naccount = \"a\"");
    assert_eq!(
        found[0],
        ("signature".to_owned(), "give exactly one of secret_env and secret_file (never the secret itself)".to_owned())
    );
    assert_eq!(problems("account = \"a\"")[0].0, "signature");
    // The secret itself is not a key.
    let found = problems("secret = \"0123456789abcdef0123\"\naccount = \"a\"");
    assert!(found[0].1.contains("unknown field `secret`"), "{found:?}");

    let good = secret_file("keys", b"0123456789abcdef0123");
    let with = |extra: &str| format!("secret_file = {:?}\naccount = \"grafana\"\n{extra}", good.display().to_string());
    let keys = |extra: &str| problems(&with(extra)).into_iter().map(|(k, _)| k).collect::<Vec<_>>();
    assert_eq!(keys("header = \"X Sig\""), ["signature.header"]);
    assert_eq!(keys("header = \"Authorization\""), ["signature.header"]);
    assert_eq!(keys("timestamp_header = \"x-sluice-signature\""), ["signature.timestamp_header"]);
    assert_eq!(keys("prefix = \"sha 256=\""), ["signature.prefix"]);
    assert_eq!(keys("tolerance_seconds = 10"), ["signature.tolerance_seconds"], "without a timestamp header");
    assert_eq!(keys("timestamp_header = \"X-Ts\"\ntolerance_seconds = 0"), ["signature.tolerance_seconds"]);
    let found = problems(&with("").replace("account = \"grafana\"", "account = \"not a name\""));
    assert_eq!(found[0].0, "signature.account");

    // Only sender formats are signed.
    let text =
        format!("{DEFAULT_DEFINITION}\n[signature]\nsecret_file = {:?}\naccount = \"a\"\n", good.display().to_string());
    let found = Integration::parse(&text, "d.toml", &Catalog::builtin()).unwrap_err();
    assert_eq!(found[0].key, "signature");
    assert_eq!(found[0].message, "only requests to the sender hook are signed, not format servicenow-import");
}

fn forwarding(table: &str) -> String {
    format!("{DEFAULT_DEFINITION}\n[forward]\n{table}")
}

#[test]
fn a_forward_table_takes_defaults_from_the_field_map() {
    let password = secret_file("forward-defaults", b"upstream password\n");
    let text = forwarding(&format!(
        "kind = \"servicenow-import\"\nurl = \"http://127.0.0.1:9/\"\ntable = \"u_incident_import\"\n\
         user = \"sluice.forwarder\"\npassword_file = {:?}\n",
        password.display().to_string()
    ));
    let i = Integration::parse(&text, "f.toml", &Catalog::builtin()).unwrap();
    let f = i.forward.as_ref().unwrap();
    assert_eq!(f.endpoint(), "http://127.0.0.1:9/api/now/import/u_incident_import");
    assert_eq!(f.correlation_field, "u_correlation_id", "the staging field mapped to correlation_id");
    assert_eq!(f.fields.get("u_short_description").map(String::as_str), Some("short_description"));
    assert!(!f.fields.contains_key("u_correlation_id"), "sluice sets the correlation field itself");
    assert!(!f.fields.contains_key("u_caller"), "references are not forwarded by default");
    assert_eq!((f.max_attempts, f.concurrency, f.busy_rate, f.timeout.as_secs()), (12, 4, 20, 10));
    match &f.auth {
        UpstreamAuth::Basic { user, password, .. } => {
            assert_eq!((user.as_str(), password.expose()), ("sluice.forwarder", &b"upstream password"[..]))
        }
        other => panic!("{other:?}"),
    }
    assert!(!format!("{:?}", f.auth).contains("upstream password"), "the password is never printed");

    let table = forwarding("kind = \"servicenow-table\"\nurl = \"https://acme.service-now.com\"\n");
    let f = Integration::parse(&table, "t.toml", &Catalog::builtin()).unwrap().forward.unwrap();
    assert_eq!(f.endpoint(), "https://acme.service-now.com/api/now/table/incident");
    assert_eq!(f.correlation_field, "correlation_id");
    assert_eq!(f.fields.get("short_description").map(String::as_str), Some("short_description"));
    assert!(matches!(f.auth, UpstreamAuth::None));
}

#[test]
fn bad_forward_tables_are_refused_naming_the_key() {
    let problems = |table: &str| -> Vec<String> {
        Integration::parse(&forwarding(table), "f.toml", &Catalog::builtin())
            .unwrap_err()
            .into_iter()
            .map(|p| format!("{}: {}", p.key, p.message))
            .collect()
    };
    let p = problems("kind = \"servicenow-import\"\nurl = \"ftp://x\"\nconcurrency = 0\nbusy_rate = 0\n");
    assert!(p.iter().any(|m| m.starts_with("forward.url: ")), "{p:?}");
    assert!(p.iter().any(|m| m.starts_with("forward.table: ")), "{p:?}");
    assert!(p.iter().any(|m| m == "forward.concurrency: must be 1 to 64"), "{p:?}");
    assert!(p.iter().any(|m| m == "forward.busy_rate: must be 1 to 100000"), "{p:?}");
    let p = problems("kind = \"http-json\"\nurl = \"http://h/x\"\nuser = \"a\"\ntoken_env = \"T\"\n");
    assert!(p.iter().any(|m| m.starts_with("forward.(auth): give one way to sign in")), "{p:?}");
    let p = problems("kind = \"http-json\"\nurl = \"http://h/x\"\ntoken_env = \"SLUICE_TEST_SURELY_UNSET\"\n");
    assert_eq!(p, ["forward.token_env: environment variable SLUICE_TEST_SURELY_UNSET is not set"]);
    let p = problems(
        "kind = \"servicenow-table\"\nurl = \"http://h\"\nfields = { short_description = \"nope\", correlation_id = \"number\" }\n",
    );
    assert!(p.iter().any(|m| m == "forward.fields.short_description: incident has no field nope"), "{p:?}");
    assert!(p.iter().any(|m| m.starts_with("forward.fields.correlation_id: is the correlation field")), "{p:?}");
}
