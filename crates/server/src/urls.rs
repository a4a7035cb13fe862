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

/// Whether an address is one a live platform must not send to on a participant's behalf:
/// loopback, private, link-local, shared (CGNAT), unspecified, multicast or broadcast.
pub(crate) fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
                || a == 0
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
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
