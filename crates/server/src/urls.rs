//! Rules for URLs participants give the platform (notify and redirect URLs).

use std::net::IpAddr;

/// Longest URL accepted, as AMS documents for `paymentNotifyUrl`.
pub(crate) const URL_CHARS_MAX: usize = 2048;

/// An absolute `http` or `https` URL with a host, at most 2048 characters.
pub(crate) fn http_url(text: &str) -> Result<String, &'static str> {
    if text.len() > URL_CHARS_MAX {
        return Err("must be at most 2048 characters");
    }
    let url = url::Url::parse(text).map_err(|_| "must be an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must name a host");
    }
    Ok(text.to_owned())
}

/// IPv4 ranges that are not the public internet (IANA's special-purpose registry): "this"
/// network, private, shared (CGNAT), loopback, link-local, IETF protocol assignments,
/// documentation, 6to4 relays, benchmarking, multicast, reserved and broadcast.
const NOT_PUBLIC_V4: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0x0a00_0000, 8),  // 10.0.0.0/8
    (0x6440_0000, 10), // 100.64.0.0/10
    (0x7f00_0000, 8),  // 127.0.0.0/8
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0xac10_0000, 12), // 172.16.0.0/12
    (0xc000_0000, 24), // 192.0.0.0/24
    (0xc000_0200, 24), // 192.0.2.0/24
    (0xc058_6300, 24), // 192.88.99.0/24
    (0xc0a8_0000, 16), // 192.168.0.0/16
    (0xc612_0000, 15), // 198.18.0.0/15
    (0xc633_6400, 24), // 198.51.100.0/24
    (0xcb00_7100, 24), // 203.0.113.0/24
    (0xe000_0000, 4),  // 224.0.0.0/4 and, below, 240.0.0.0/4
    (0xf000_0000, 4),
];

/// IPv6 ranges that are not the public internet, besides those that embed an IPv4 address
/// (handled by [`embedded_v4`]): unspecified and loopback, discard, IETF protocol assignments
/// (Teredo among them), documentation, unique local, link-local, site-local, multicast, and
/// NAT64's local-use prefix.
const NOT_PUBLIC_V6: &[(u128, u32)] = &[
    (0, 127),                            // ::/127
    (0x0100_0000_0000_0000 << 64, 64),   // 100::/64
    (0x2001_0000 << 96, 23),             // 2001::/23
    (0x2001_0db8 << 96, 32),             // 2001:db8::/32
    (0xfc00 << 112, 7),                  // fc00::/7
    (0xfe80 << 112, 10),                 // fe80::/10
    (0xfec0 << 112, 10),                 // fec0::/10
    (0xff00 << 112, 8),                  // ff00::/8
    ((0x0064_ff9b_0001_u128) << 80, 48), // 64:ff9b:1::/48
];

fn in_range<T>(address: T, ranges: &[(T, u32)], bits: u32) -> bool
where
    T: Copy + PartialEq + std::ops::Shr<u32, Output = T>,
{
    ranges.iter().any(|&(network, prefix)| address >> (bits - prefix) == network >> (bits - prefix))
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped and IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::/96`) and 6to4 (`2002::/16`).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let bits = u128::from(v6);
    let low = std::net::Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0xffff || (bits >> 32 == 0 && bits > 1) || bits >> 32 == 0x0064_ff9b_u128 << 64 {
        return Some(low);
    }
    if bits >> 112 == 0x2002 {
        return Some(std::net::Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// Whether an address is one a live platform must not send to on a participant's behalf:
/// anything but the public internet, including IPv4 addresses tunnelled in IPv6.
pub(crate) fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => in_range(u32::from(v4), NOT_PUBLIC_V4, 32),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => in_range(u128::from(v6), NOT_PUBLIC_V6, 128),
        },
    }
}

/// Whether a URL names a private address outright: an IP literal that [`is_private`], or a
/// `localhost` name. Names that resolve to private addresses are refused at sending time.
pub(crate) fn names_private_host(text: &str) -> bool {
    let Ok(url) = url::Url::parse(text) else { return false };
    match url.host() {
        Some(url::Host::Ipv4(v4)) => is_private(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => is_private(IpAddr::V6(v6)),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_public_internet_is_public() {
        let private = [
            "0.1.2.3",
            "10.0.0.7",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.1",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "2002:a00:1::",
            "2002:7f00:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ];
        for address in private {
            assert!(is_private(address.parse().unwrap()), "{address} is not public");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
        ];
        for address in public {
            assert!(!is_private(address.parse().unwrap()), "{address} is public");
        }
    }

    #[test]
    fn rules() {
        assert!(http_url("https://merchant.example/notify").is_ok());
        assert!(http_url("http://127.0.0.1:9000/n?x=1").is_ok());
        assert_eq!(http_url("ftp://merchant.example/"), Err("must be an http or https URL"));
        assert_eq!(http_url("/notify"), Err("must be an absolute URL"));
        assert_eq!(
            http_url(&format!("https://a.example/{}", "x".repeat(2048))),
            Err("must be at most 2048 characters")
        );
    }
}
