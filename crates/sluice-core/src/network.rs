//! Source networks: the one rule for account networks, integration `networks` and
//! `--trusted-proxy`. A network is an [`ipnet::IpNet`]; it is written in CIDR notation or as a
//! single address (a /32 or /128), with host bits cleared (`10.1.2.3/8` is `10.0.0.0/8`). An IPv4
//! client seen through an IPv6 socket (`::ffff:a.b.c.d`) is matched as the IPv4 address.

use std::net::IpAddr;

pub use ipnet::IpNet;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a CIDR network such as 10.0.0.0/8 or 2001:db8::/32")]
pub struct InvalidNetwork(pub String);

/// A source network: CIDR notation, or a single address (a /32 or /128). Host bits are cleared,
/// so `10.1.2.3/8` is stored as `10.0.0.0/8`.
pub fn parse_network(text: &str) -> Result<IpNet, InvalidNetwork> {
    let t = text.trim();
    let net = t
        .parse::<IpNet>()
        .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| InvalidNetwork(text.to_owned()))?;
    Ok(net.trunc())
}

/// The stored form: networks separated by commas.
pub fn format_networks(networks: &[IpNet]) -> String {
    networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Reads the stored form, skipping anything unreadable (it was checked when written).
pub fn parse_networks(list: &str) -> Vec<IpNet> {
    list.split(',').filter(|s| !s.trim().is_empty()).filter_map(|s| parse_network(s).ok()).collect()
}

/// The address as matched: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as its IPv4 address.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether one of `networks` holds `ip` (none: no).
pub fn any_contains(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = normalise(ip);
    networks.iter().any(|n| n.contains(&ip))
}

/// Whether a source at `ip` may call: `networks` empty means anywhere.
pub fn allows_source(networks: &[IpNet], ip: IpAddr) -> bool {
    networks.is_empty() || any_contains(networks, ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_are_parsed_canonical_and_match_v4_v6_and_mapped_addresses() {
        let nets: Vec<IpNet> =
            ["10.1.2.3/8", "2001:db8::/32", "192.0.2.7"].iter().map(|n| parse_network(n).unwrap()).collect();
        assert_eq!(format_networks(&nets), "10.0.0.0/8,2001:db8::/32,192.0.2.7/32");
        assert_eq!(parse_networks(&format_networks(&nets)), nets);
        assert_eq!(
            parse_network("10.0.0.0/33").unwrap_err().to_string(),
            "\"10.0.0.0/33\" is not a CIDR network such as 10.0.0.0/8 or 2001:db8::/32"
        );
        assert!(parse_network("nonsense").is_err());
        assert!(parse_network("10.0.0.0/").is_err());
        assert!(allows_source(&nets, ip("10.200.0.1")));
        assert!(allows_source(&nets, ip("::ffff:10.0.0.9")));
        assert!(allows_source(&nets, ip("2001:db8:1::5")));
        assert!(allows_source(&nets, ip("192.0.2.7")));
        assert!(!allows_source(&nets, ip("192.0.2.8")));
        assert!(!allows_source(&nets, ip("2001:db9::1")));
        assert!(allows_source(&[], ip("203.0.113.1")));
        assert!(!any_contains(&[], ip("203.0.113.1")));
        assert!(any_contains(&[parse_network("0.0.0.0/0").unwrap()], ip("192.0.2.1")));
        assert!(!any_contains(&[parse_network("0.0.0.0/0").unwrap()], ip("2001:db8::1")), "v4 holds no v6");
    }
}
