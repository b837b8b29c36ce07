//! The client address of a request: the TCP peer, or — only when the peer is one of the
//! `--trusted-proxy` networks — the address its `X-Forwarded-For` names. The header is read from
//! the right (the hop nearest sluice) and trusted proxies are skipped, so a client cannot choose
//! its address by sending the header itself: whatever it sends lies left of what the proxy adds.
//! The per-address limit, the lockout, account and integration networks and the log all use it.

use std::net::IpAddr;

use axum::http::HeaderMap;
use sluice_core::network::{self, IpNet, normalise};

/// The resolved client address, put into the request's extensions by
/// [`crate::observe::track`]; an inner batch request inherits the batch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

fn trusted(proxies: &[IpNet], ip: IpAddr) -> bool {
    network::any_contains(proxies, ip)
}

/// One `X-Forwarded-For` element: an address, possibly `[v6]:port` or `v4:port`.
fn parse_hop(text: &str) -> Option<IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    t.rsplit_once(':').filter(|(host, _)| !host.contains(':'))?.0.parse().ok()
}

/// The client address of a request that arrived from `peer`.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = normalise(peer);
    if !trusted(proxies, peer) {
        return peer;
    }
    // Every X-Forwarded-For line, in order, as one list.
    let mut hops: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else { return peer };
        hops.extend(text.split(','));
    }
    let mut client = peer;
    for hop in hops.iter().rev() {
        // An unreadable element ends the chain: the last trusted hop is the client we know.
        let Some(ip) = parse_hop(hop).map(normalise) else { break };
        client = ip;
        if !trusted(proxies, ip) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_counts_only_behind_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "fd00::/8".parse().unwrap()];
        let spoofed = headers(&["203.0.113.9"]);
        assert_eq!(resolve(ip("198.51.100.1"), &spoofed, &proxies), ip("198.51.100.1"));
        assert_eq!(resolve(ip("198.51.100.1"), &spoofed, &[]), ip("198.51.100.1"));
        assert_eq!(resolve(ip("10.0.0.5"), &spoofed, &proxies), ip("203.0.113.9"));
        // The client's own header lies left of the proxy's: the rightmost untrusted hop wins.
        let chain = headers(&["1.2.3.4, 203.0.113.9", "10.0.0.7"]);
        assert_eq!(resolve(ip("10.0.0.5"), &chain, &proxies), ip("203.0.113.9"));
        assert_eq!(resolve(ip("::ffff:10.0.0.5"), &headers(&["[2001:db8::1]:443"]), &proxies), ip("2001:db8::1"));
        assert_eq!(resolve(ip("fd00::1"), &headers(&["192.0.2.1:8080"]), &proxies), ip("192.0.2.1"));
        // Only proxies, or rubbish: the last trusted hop.
        assert_eq!(resolve(ip("10.0.0.5"), &headers(&["10.0.0.6"]), &proxies), ip("10.0.0.6"));
        assert_eq!(resolve(ip("10.0.0.5"), &headers(&["203.0.113.9, nonsense"]), &proxies), ip("10.0.0.5"));
        assert_eq!(resolve(ip("10.0.0.5"), &HeaderMap::new(), &proxies), ip("10.0.0.5"));
    }
}
