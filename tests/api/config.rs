//! The configuration file (`--config`, `SLUICE_CONFIG`): its values under the `SLUICE_*`
//! variables and the flags, as the running server and `sluice check-config` show them.

use std::path::Path;

use serde_json::json;

use crate::helpers::{STAGING, Server, sluice};

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A create whose body is about `bytes` long: its status.
async fn create_of(server: &Server, bytes: usize) -> u16 {
    let body = json!({ "u_short_description": "size test", "u_description": "x".repeat(bytes) });
    let r = server
        .admin(server.http.post(server.url(&format!("/api/now/import/{STAGING}"))))
        .json(&body)
        .send()
        .await
        .unwrap();
    r.status().as_u16()
}

#[tokio::test]
async fn the_flag_beats_the_variable_which_beats_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "sluice.toml", "max_body_bytes = 2000\nrequest-timeout = 20\n");

    // The file alone: a 3,000-byte body is too large.
    let server = Server::start_with(&["--config", &config]);
    assert_eq!(create_of(&server, 3000).await, 413);
    assert_eq!(create_of(&server, 500).await, 201);
    drop(server);

    // Found through SLUICE_CONFIG too; the variable beats the file.
    let server = Server::start_with_env(&[], &[("SLUICE_CONFIG", &config), ("SLUICE_MAX_BODY_BYTES", "5000")]);
    assert_eq!(create_of(&server, 3000).await, 201);
    assert_eq!(create_of(&server, 6000).await, 413);
    drop(server);

    // The flag beats both.
    let server = Server::start_with_env(
        &["--config", &config, "--max-body-bytes", "1200"],
        &[("SLUICE_MAX_BODY_BYTES", "5000")],
    );
    assert_eq!(create_of(&server, 2000).await, 413);
}

#[test]
fn check_config_names_each_source_and_refuses_what_serve_would() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "sluice.toml",
        "listen = \"127.0.0.1:9999\"\nmax_body_bytes = 2000\ntrusted_proxy = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n",
    );
    let out = sluice()
        .args(["check-config", "--config", &config])
        .env("SLUICE_LISTEN", "127.0.0.1:7777")
        .env_remove("SLUICE_INTEGRATIONS")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "listen = 127.0.0.1:7777  (environment)",
        "max-body-bytes = 2000  (file)",
        "trusted-proxy = 10.0.0.0/8,192.168.0.0/16  (file)",
        "retention-days = 90  (default)",
        "configuration ok",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing from:\n{text}");
    }
    assert!(text.contains("# integrations: ") && text.contains("u_incident_import"), "{text}");

    let check = |toml: &str| {
        let path = write(dir.path(), "bad.toml", toml);
        let out =
            sluice().args(["check-config", "--config", &path]).env_remove("SLUICE_INTEGRATIONS").output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = check("max_body_bytez = 1\n");
    assert!(!ok && err.contains("max_body_bytez: not a setting"), "{err}");
    let (ok, err) = check("[serve]\nlisten = \"x\"\n");
    assert!(!ok && err.contains("serve: not a setting"), "{err}");
    let (ok, err) = check("max_body_bytes = \"lots\"\n");
    assert!(!ok && err.contains("--max-body-bytes") && err.contains("lots"), "{err}");
    let (ok, err) = check("trusted_proxy = [\"not-a-network\"]\n");
    assert!(!ok && err.contains("--trusted-proxy"), "{err}");
    let (ok, err) = check("tls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n");
    assert!(!ok && err.contains("/nonexistent/cert.pem"), "{err}");
    let integrations = dir.path().join("integrations");
    std::fs::create_dir(&integrations).unwrap();
    std::fs::write(integrations.join("broken.toml"), "name = 3\n").unwrap();
    let (ok, err) = check(&format!("integrations = {:?}\n", integrations.display().to_string()));
    assert!(!ok && err.contains("broken.toml"), "{err}");
    let (ok, err) = check("not toml at all = = =\n");
    assert!(!ok && err.contains("is not valid TOML"), "{err}");
}

#[test]
fn the_file_serves_every_command_that_has_the_flag() {
    let server = Server::start_sqlite();
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "sluice.toml", &format!("data = {:?}\n", server.data.display().to_string()));
    let out =
        sluice().args(["account", "show", "admin", "--config", &config]).env_remove("SLUICE_DATA").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin"));
}

#[test]
fn version_names_the_commit() {
    let out = sluice().arg("version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let expected = format!("sluice {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(out.status.success() && text.starts_with(&expected), "{text}");
    let commit = text.trim().trim_start_matches(&expected).trim_end_matches(')');
    assert!(commit == "unknown" || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())), "{text}");
    let long = sluice().arg("--version").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&long.stdout), text);
}

#[test]
fn health_exits_0_only_on_a_200() {
    let server = Server::start();
    let health = |path: &str| sluice().args(["health", "--url", &server.url(path)]).output().unwrap();
    let ok = health("/healthz");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("200 "));
    let refused = health("/api/now/table/incident");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("answered HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let out = sluice().args(["health", "--url", "https://127.0.0.1:1/healthz"]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("only http://"));
}
