//! A brute-force run: 1,000 wrong passwords are refused, mostly by the lockout without running
//! argon2, so the CPU they cost stays bounded.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// The server process's CPU time (user + system) in clock ticks, from /proc.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime and stime are 14th and 15th.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{name} in {metrics}"))
}

#[tokio::test]
async fn a_thousand_wrong_passwords_are_throttled_and_cost_bounded_cpu() {
    let s = Server::start();
    // Metrics are read with an API token: the lockout (rightly) stops Basic logins from here too.
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/accounts/admin/tokens"))).send().await.unwrap();
    let token = r.json::<Value>().await.unwrap()["result"]["token"].as_str().unwrap().to_owned();
    let metrics = || async {
        let r = s.http.get(s.url("/metrics")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let before = counter(&metrics().await, "sluice_argon2_verifications_total");
    let cpu_before = cpu_ticks(s.pid());
    let started = Instant::now();
    let (mut unauthorized, mut throttled) = (0, 0);
    for i in 0..1000 {
        let r = s
            .http
            .get(s.url("/api/now/table/incident"))
            .basic_auth("admin", Some(format!("guess-{i}")))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            401 => unauthorized += 1,
            429 => {
                throttled += 1;
                assert!(r.headers().contains_key("retry-after"));
            }
            other => panic!("attempt {i}: {other}"),
        }
    }
    let elapsed = started.elapsed();
    let cpu = cpu_ticks(s.pid()) - cpu_before;
    let verified = counter(&metrics().await, "sluice_argon2_verifications_total") - before;
    eprintln!(
        "brute force: {unauthorized} x 401, {throttled} x 429, {verified} argon2 runs, {cpu} CPU ticks, {elapsed:?}"
    );
    // Five free failures, the sixth sets the lock; then one try per expired (doubling) lock.
    assert!(throttled >= 980, "{unauthorized} refused, {throttled} throttled in {elapsed:?}");
    assert_eq!(unauthorized as u64, verified, "every 401 ran argon2 once, no 429 did");
    assert!(verified <= 12, "{verified} argon2 runs in {elapsed:?}");
    // About 10 argon2 runs and 1,000 small answers: well under 3 s of CPU (ticks are 1/100 s).
    assert!(cpu < 300, "{cpu} ticks of CPU for 1,000 wrong passwords in {elapsed:?}");
    assert!(counter(&metrics().await, "sluice_login_lockouts_total") >= 1);
}

/// A GET of the incident table as `user` from `address` (the server trusts 127.0.0.1 as a
/// proxy): the status and the scope of a 429's limit.
async fn login(
    http: reqwest::Client,
    base: String,
    address: String,
    user: &str,
    password: String,
) -> (u16, Option<String>) {
    let r = http
        .get(format!("{base}/api/now/table/incident?sysparm_limit=1"))
        .basic_auth(user, Some(password))
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (status, body["error"]["limit"]["scope"].as_str().map(str::to_owned))
}

async fn login_from(s: &Server, address: &str, user: &str, password: &str) -> (u16, Option<String>) {
    login(s.http.clone(), s.base.clone(), address.to_owned(), user, password.to_owned()).await
}

fn locked(scope: &str) -> (u16, Option<String>) {
    (429, Some(scope.to_owned()))
}

#[tokio::test]
async fn an_attacker_failing_on_purpose_locks_only_its_own_address_not_the_account() {
    let s = Server::start_with(&["--trusted-proxy", "127.0.0.1/32"]);
    // Never logged in: its correct password has to run argon2 (nothing cached).
    let password = s.add_account("integration", &["itil"]);
    let attacker = "203.0.113.9";
    let mut refused = Vec::new();
    for i in 0..20 {
        refused.push(login_from(&s, attacker, "integration", &format!("guess-{i}")).await);
    }
    assert!(refused[..5].iter().all(|r| r.0 == 401), "{refused:?}");
    assert!(refused[6..].iter().all(|r| *r == locked("login_address")), "{refused:?}");

    // The attacker's address stays locked: the right password or another account change nothing.
    assert_eq!(login_from(&s, attacker, "integration", &password).await, locked("login_address"));
    assert_eq!(login_from(&s, attacker, "admin", ADMIN_PASSWORD).await, locked("login_address"));

    // The account is under attack: a wrong password from elsewhere is refused, and slowly.
    let started = Instant::now();
    assert_eq!(login_from(&s, "198.51.100.8", "integration", "wrong").await.0, 401);
    assert!(started.elapsed() >= Duration::from_millis(900), "paced: {:?}", started.elapsed());

    // The real client, from its own address, gets in at once.
    let started = Instant::now();
    assert_eq!(login_from(&s, "198.51.100.7", "integration", &password).await.0, 200);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn many_addresses_failing_on_one_account_run_argon2_at_a_bounded_rate() {
    let s = Server::start_with(&["--trusted-proxy", "127.0.0.1/32"]);
    let password = s.add_account("integration", &["itil"]);
    let r = s.admin(s.http.post(s.url("/api/sluice/v1/accounts/admin/tokens"))).send().await.unwrap();
    let token = r.json::<Value>().await.unwrap()["result"]["token"].as_str().unwrap().to_owned();
    let verifications = || async {
        let r = s.http.get(s.url("/metrics")).bearer_auth(&token).send().await.unwrap();
        counter(&r.text().await.unwrap(), "sluice_argon2_verifications_total")
    };
    // Put the account under attack: six failures from six addresses (none of them locked).
    for i in 0..6 {
        assert_eq!(login_from(&s, &format!("192.0.2.{i}"), "integration", "wrong").await.0, 401);
    }
    let before = verifications().await;
    let started = Instant::now();
    // 30 addresses at once, each with a wrong password.
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..30 {
        attempts.spawn(login(s.http.clone(), s.base.clone(), format!("198.18.0.{i}"), "integration", "wrong".into()));
    }
    let outcomes = attempts.join_all().await;
    let elapsed = started.elapsed();
    let verified = verifications().await - before;
    let paced = outcomes.iter().filter(|o| o.0 == 401).count();
    let queue_full = outcomes.iter().filter(|o| **o == locked("login_account")).count();
    eprintln!(
        "30 concurrent guesses: {paced} verified, {queue_full} refused unverified, {verified} argon2 runs in {elapsed:?}"
    );
    assert_eq!(paced + queue_full, 30, "{outcomes:?}");
    assert_eq!(verified, paced as u64, "only the paced attempts ran argon2");
    assert!(queue_full > 0, "the queue is bounded");
    // One verification at a time, each failure followed by a second's pause.
    assert!(verified <= elapsed.as_secs() + 1, "{verified} argon2 runs in {elapsed:?}");

    // When the attack stops, the real client gets in from its own address.
    assert_eq!(login_from(&s, "198.51.100.7", "integration", &password).await.0, 200);
}
