//! A brute-force run: 1,000 wrong passwords are refused, mostly by the lockout without running
//! argon2, so the CPU they cost stays bounded.

use std::time::Instant;

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
