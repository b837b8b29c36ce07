//! Fixed vectors computed with `openssl dgst -sha256 -hmac it-is-a-long-secret-0123`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue};
use sluice_core::integration::Signature;
use sluice_core::integration::signature::SecretSource;

use super::*;

const BODY: &[u8] = br#"{"a":1}"#;
/// HMAC of BODY.
const PLAIN: &str = "e86178cb474f84377e01d8be53b6079cbe5950cad4127f2121bf6762e1fbff33";
/// HMAC of `1765100000:` + BODY (Grafana's scheme).
const STAMPED: &str = "b4ec3c6a8b7145e6eebe32625bcbe35c823bfef03bcb36abf0dade0291fb90c7";
const AT: u64 = 1_765_100_000;

fn signature(prefix: &str, timestamp_header: Option<&str>) -> Signature {
    Signature {
        header: "X-Sig".into(),
        prefix: prefix.into(),
        timestamp_header: timestamp_header.map(str::to_owned),
        tolerance: Duration::from_secs(300),
        account: "grafana".into(),
        required: true,
        source: SecretSource::Env("SECRET".into()),
        secret: b"it-is-a-long-secret-0123".to_vec().into(),
    }
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    h
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

#[test]
fn a_good_signature_passes_in_either_case_and_a_wrong_one_does_not() {
    let s = signature("", None);
    assert!(verify(&s, &headers(&[("x-sig", PLAIN)]), BODY, at(AT)).is_ok());
    assert!(verify(&s, &headers(&[("x-sig", &PLAIN.to_uppercase())]), BODY, at(AT)).is_ok());
    assert!(verify(&s, &headers(&[("x-sig", &format!(" {PLAIN} "))]), BODY, at(AT)).is_ok());
    let code = |h: HeaderMap, body: &[u8]| verify(&s, &h, body, at(AT)).unwrap_err().code();
    assert_eq!(code(headers(&[("x-sig", PLAIN)]), br#"{"a":2}"#), "signature_invalid");
    assert_eq!(code(headers(&[("x-sig", &PLAIN[..62])]), BODY), "signature_invalid");
    assert_eq!(code(headers(&[("x-sig", &format!("{}0", &PLAIN[..63]))]), BODY), "signature_invalid");
    assert_eq!(code(headers(&[("x-sig", &format!("{}g", &PLAIN[..63]))]), BODY), "signature_invalid");
    assert_eq!(code(headers(&[]), BODY), "signature_missing");
}

#[test]
fn a_prefix_is_required_when_configured() {
    let s = signature("sha256=", None);
    assert!(verify(&s, &headers(&[("x-sig", &format!("sha256={PLAIN}"))]), BODY, at(AT)).is_ok());
    assert!(verify(&s, &headers(&[("x-sig", &format!("SHA256={PLAIN}"))]), BODY, at(AT)).is_ok());
    let e = verify(&s, &headers(&[("x-sig", PLAIN)]), BODY, at(AT)).unwrap_err();
    assert_eq!(e.code(), "signature_invalid");
}

#[test]
fn a_timestamp_is_signed_and_must_be_within_the_tolerance() {
    let s = signature("", Some("X-Ts"));
    let stamp = AT.to_string();
    let ok = headers(&[("x-sig", STAMPED), ("x-ts", &stamp)]);
    assert!(verify(&s, &ok, BODY, at(AT)).is_ok());
    assert!(verify(&s, &ok, BODY, at(AT + 300)).is_ok());
    assert!(verify(&s, &ok, BODY, at(AT - 300)).is_ok());
    for now in [AT + 301, AT - 301] {
        let e = verify(&s, &ok, BODY, at(now)).unwrap_err();
        assert_eq!(e.code(), "signature_stale");
        assert!(e.detail().unwrap().contains("X-Ts") && e.detail().unwrap().contains("300 seconds"));
    }
    // The timestamp is part of what is signed: another one within the tolerance does not verify.
    let moved = headers(&[("x-sig", STAMPED), ("x-ts", &(AT + 1).to_string())]);
    assert_eq!(verify(&s, &moved, BODY, at(AT)).unwrap_err().code(), "signature_invalid");
    // The plain signature does not verify when a timestamp is expected.
    let plain = headers(&[("x-sig", PLAIN), ("x-ts", &stamp)]);
    assert_eq!(verify(&s, &plain, BODY, at(AT)).unwrap_err().code(), "signature_invalid");
    for bad in ["", "-5", "1.5", "17651000000000000000000"] {
        let h = headers(&[("x-sig", STAMPED), ("x-ts", bad)]);
        assert_eq!(verify(&s, &h, BODY, at(AT)).unwrap_err().code(), "signature_stale", "{bad:?}");
    }
    let e = verify(&s, &headers(&[("x-sig", STAMPED)]), BODY, at(AT)).unwrap_err();
    assert!(matches!(&e, ApiError::SignatureMissing(h) if h == "X-Ts"), "{e:?}");
}
