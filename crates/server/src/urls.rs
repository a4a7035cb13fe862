//! Rules for URLs participants give the platform (notify and redirect URLs).

use std::net::{IpAddr, SocketAddr};

/// Longest URL accepted, as AMS documents for `paymentNotifyUrl`.
pub(crate) const URL_CHARS_MAX: usize = 2048;

/// An absolute `http` or `https` URL with a host, at most 2048 characters, parsed once where it
/// enters (a request field, a CLI flag, a stored row) and then checked and used as it is. It
/// keeps the text it was given, which is what is stored and shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    url: url::Url,
}

impl HttpUrl {
    pub fn parse(text: &str) -> Result<HttpUrl, &'static str> {
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
        Ok(HttpUrl { text: text.to_owned(), url })
    }

    /// The URL as it was given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }

    /// The parsed URL: its host, port and path.
    pub(crate) fn url(&self) -> &url::Url {
        &self.url
    }
}

impl std::str::FromStr for HttpUrl {
    type Err = &'static str;

    fn from_str(text: &str) -> Result<HttpUrl, &'static str> {
        HttpUrl::parse(text)
    }
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

/// Whether an address is not on the public internet, including IPv4 addresses tunnelled in
/// IPv6.
pub(crate) fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => in_range(u32::from(v4), NOT_PUBLIC_V4, 32),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => in_range(u128::from(v6), NOT_PUBLIC_V6, 128),
        },
    }
}

/// Addresses no notification ever goes to, whatever the settings: "this" network and the
/// unspecified address (which reach the machine itself), link-local ranges (cloud metadata
/// services answer at 169.254.169.254), Alibaba Cloud's metadata service (100.100.100.200)
/// and AWS's IPv6 one (fd00:ec2::254).
const NEVER_V4: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8
    (0xa9fe_0000, 16), // 169.254.0.0/16
    (0x6464_64c8, 32), // 100.100.100.200
];
const NEVER_V6: &[(u128, u32)] = &[
    (0, 128),                                // ::
    (0xfe80 << 112, 10),                     // fe80::/10
    ((0xfd00_0ec2_u128 << 96) | 0x254, 128), // fd00:ec2::254
];

/// What kind of address a notification would reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AddressClass {
    Public,
    /// 127.0.0.0/8 and ::1: the sending machine itself.
    Loopback,
    /// Every other address outside the public internet (RFC 1918, unique local, CGNAT, ...).
    Private,
    /// Link-local, metadata and unspecified addresses: never reached.
    Never,
}

pub(crate) fn class_of(address: IpAddr) -> AddressClass {
    let v4 = match address {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => embedded_v4(v6),
    };
    let never = match (v4, address) {
        (Some(v4), _) => in_range(u32::from(v4), NEVER_V4, 32),
        (None, IpAddr::V6(v6)) => in_range(u128::from(v6), NEVER_V6, 128),
        (None, IpAddr::V4(_)) => false,
    };
    let loopback = match (v4, address) {
        (Some(v4), _) => v4.is_loopback(),
        (None, IpAddr::V6(v6)) => v6.is_loopback(),
        (None, IpAddr::V4(_)) => false,
    };
    if never {
        AddressClass::Never
    } else if loopback {
        AddressClass::Loopback
    } else if is_private(address) {
        AddressClass::Private
    } else {
        AddressClass::Public
    }
}

/// Which addresses outside the public internet a participant's notifications may reach
/// (never link-local or metadata addresses, whatever this says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reach {
    pub(crate) loopback: bool,
    pub(crate) private: bool,
}

impl Reach {
    pub(crate) fn allows(self, address: IpAddr) -> bool {
        match class_of(address) {
            AddressClass::Public => true,
            AddressClass::Loopback => self.loopback,
            AddressClass::Private => self.private,
            AddressClass::Never => false,
        }
    }
}

/// Why a notify URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// A link-local, metadata or unspecified address.
    Never,
    Loopback,
    Private,
    /// The platform's own listener (its listen address or its public URL).
    OwnListener,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Never => "must not name a link-local, cloud metadata or unspecified address",
            Refusal::Loopback => "must not name a loopback address (localhost) here",
            Refusal::Private => "must not name a private address here",
            Refusal::OwnListener => "must not name this platform's own address",
        }
    }
}

/// Host names of cloud metadata services, refused like their addresses.
const METADATA_NAMES: &[&str] = &["metadata.google.internal", "metadata.goog", "metadata"];

/// The platform's own listeners, which no notification may reach: the address it listens on
/// and the host and port of its public URL.
#[derive(Debug, Clone)]
pub(crate) struct OwnListeners {
    listen: SocketAddr,
    public: Option<(url::Host<String>, u16)>,
}

impl OwnListeners {
    pub(crate) fn new(listen: SocketAddr, public_url: &str) -> OwnListeners {
        let public = url::Url::parse(public_url)
            .ok()
            .and_then(|url| Some((url.host()?.to_owned(), url.port_or_known_default()?)));
        OwnListeners { listen, public }
    }

    /// Whether an address on `port` could reach a listener: the listen port, or the public URL's
    /// port when its host is an address (a public URL's name is compared as a name).
    pub(crate) fn on_port(&self, port: u16) -> bool {
        port == self.listen.port()
            || self.public.as_ref().is_some_and(|(host, public_port)| {
                *public_port == port && !matches!(host, url::Host::Domain(_))
            })
    }

    /// Whether a connection to `address` reaches one of the listeners. A server listening on
    /// every address (`0.0.0.0`, `::`) is reached on its port at any loopback, private or
    /// unspecified address; its public addresses are covered by the public URL.
    pub(crate) fn reached_at(&self, address: SocketAddr) -> bool {
        if address.port() != self.listen.port() {
            return self
                .public
                .as_ref()
                .is_some_and(|(host, port)| *port == address.port() && host_is(host, address.ip()));
        }
        let listen_ip = self.listen.ip();
        if canonical(address.ip()) == canonical(listen_ip) {
            return true;
        }
        if listen_ip.is_unspecified() && class_of(address.ip()) != AddressClass::Public {
            return true;
        }
        // A loopback listener is reached at every loopback address of its family.
        if listen_ip.is_loopback() && class_of(address.ip()) == AddressClass::Loopback {
            return true;
        }
        self.public
            .as_ref()
            .is_some_and(|(host, port)| *port == address.port() && host_is(host, address.ip()))
    }

    /// Whether a URL's host and port name a listener outright (before any resolution).
    fn named_by(&self, host: &url::Host<&str>, port: u16) -> bool {
        if let Some((public_host, public_port)) = &self.public
            && *public_port == port
            && same_host(public_host, host)
        {
            return true;
        }
        match host {
            url::Host::Ipv4(v4) => self.reached_at(SocketAddr::new(IpAddr::V4(*v4), port)),
            url::Host::Ipv6(v6) => self.reached_at(SocketAddr::new(IpAddr::V6(*v6), port)),
            url::Host::Domain(name) if is_localhost(name) => {
                self.reached_at(SocketAddr::from(([127, 0, 0, 1], port)))
                    || self.reached_at(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)))
            }
            url::Host::Domain(_) => false,
        }
    }
}

fn same_host(a: &url::Host<String>, b: &url::Host<&str>) -> bool {
    match (a, b) {
        (url::Host::Domain(a), url::Host::Domain(b)) => {
            a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
        }
        (a, b) => *a == b.to_owned(),
    }
}

fn host_is(host: &url::Host<String>, address: IpAddr) -> bool {
    match host {
        url::Host::Ipv4(v4) => canonical(IpAddr::V4(*v4)) == canonical(address),
        url::Host::Ipv6(v6) => canonical(IpAddr::V6(*v6)) == canonical(address),
        url::Host::Domain(_) => false,
    }
}

/// An IPv4-mapped IPv6 address as its IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Checks what a notify URL names outright: IP literals by their class, `localhost` as a
/// loopback address, metadata services' names, and the platform's own listeners. Other names
/// are checked as they resolve, when sending.
pub(crate) fn check_notify_url(url: &HttpUrl, reach: Reach, own: &OwnListeners) -> Result<(), Refusal> {
    let url = url.url();
    let Some(host) = url.host() else { return Ok(()) };
    let port = url.port_or_known_default().unwrap_or(80);
    if own.named_by(&host, port) {
        return Err(Refusal::OwnListener);
    }
    let class = match host {
        url::Host::Ipv4(v4) => class_of(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => class_of(IpAddr::V6(v6)),
        url::Host::Domain(name) if is_localhost(name) => AddressClass::Loopback,
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if METADATA_NAMES.contains(&name.as_str()) { AddressClass::Never } else { AddressClass::Public }
        }
    };
    match class {
        AddressClass::Public => Ok(()),
        AddressClass::Loopback if reach.loopback => Ok(()),
        AddressClass::Private if reach.private => Ok(()),
        AddressClass::Loopback => Err(Refusal::Loopback),
        AddressClass::Private => Err(Refusal::Private),
        AddressClass::Never => Err(Refusal::Never),
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
    fn link_local_and_metadata_addresses_are_never_reached() {
        let everything = Reach { loopback: true, private: true };
        for address in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:169.254.169.254",
        ] {
            let address: IpAddr = address.parse().unwrap();
            assert_eq!(class_of(address), AddressClass::Never, "{address}");
            assert!(!everything.allows(address), "{address}");
        }
        assert_eq!(class_of("127.0.0.2".parse().unwrap()), AddressClass::Loopback);
        assert_eq!(class_of("::1".parse().unwrap()), AddressClass::Loopback);
        assert_eq!(class_of("::ffff:127.0.0.1".parse().unwrap()), AddressClass::Loopback);
        assert_eq!(class_of("10.0.0.1".parse().unwrap()), AddressClass::Private);
        assert_eq!(class_of("100.100.100.199".parse().unwrap()), AddressClass::Private);
        assert_eq!(class_of("8.8.8.8".parse().unwrap()), AddressClass::Public);
    }

    #[test]
    fn notify_urls_by_reach_and_listener() {
        let own = OwnListeners::new("127.0.0.1:8080".parse().unwrap(), "https://pay.example.com");
        let sandbox = Reach { loopback: true, private: false };
        let check = |url: &str, reach| check_notify_url(&HttpUrl::parse(url).unwrap(), reach, &own);
        assert_eq!(check("http://127.0.0.1:9000/n", sandbox), Ok(()));
        assert_eq!(check("http://localhost:9000/n", sandbox), Ok(()));
        assert_eq!(check("https://merchant.example/n", sandbox), Ok(()));
        assert_eq!(check("http://10.0.0.1:6379/", sandbox), Err(Refusal::Private));
        assert_eq!(check("http://169.254.169.254/latest/meta-data/", sandbox), Err(Refusal::Never));
        assert_eq!(check("http://metadata.google.internal/", sandbox), Err(Refusal::Never));
        assert_eq!(check("http://[::ffff:a9fe:a9fe]/", sandbox), Err(Refusal::Never));
        assert_eq!(check("http://127.0.0.1:8080/admin/api/x", sandbox), Err(Refusal::OwnListener));
        assert_eq!(check("http://127.0.0.2:8080/", sandbox), Err(Refusal::OwnListener));
        assert_eq!(check("http://localhost:8080/", sandbox), Err(Refusal::OwnListener));
        assert_eq!(check("https://PAY.example.com./x", sandbox), Err(Refusal::OwnListener));
        assert_eq!(check("http://pay.example.com/x", sandbox), Ok(()), "another port");
        let live = Reach { loopback: false, private: false };
        assert_eq!(check("http://127.0.0.1:9000/n", live), Err(Refusal::Loopback));
        let everywhere = OwnListeners::new("0.0.0.0:8080".parse().unwrap(), "http://0.0.0.0:8080");
        let all = Reach { loopback: true, private: true };
        let check = |url: &str| check_notify_url(&HttpUrl::parse(url).unwrap(), all, &everywhere);
        assert_eq!(check("http://10.1.2.3:8080/"), Err(Refusal::OwnListener));
        assert_eq!(check("http://10.1.2.3:8081/"), Ok(()));
    }

    #[test]
    fn rules() {
        let http_url = |text: &str| HttpUrl::parse(text).map(HttpUrl::into_string);
        assert_eq!(http_url("https://merchant.example/notify"), Ok("https://merchant.example/notify".into()));
        assert_eq!(http_url("HTTP://Merchant.example/n?x=1"), Ok("HTTP://Merchant.example/n?x=1".into()));
        assert_eq!(http_url("ftp://merchant.example/"), Err("must be an http or https URL"));
        assert_eq!(http_url("/notify"), Err("must be an absolute URL"));
        assert_eq!(
            http_url(&format!("https://a.example/{}", "x".repeat(2048))),
            Err("must be at most 2048 characters")
        );
    }
}
