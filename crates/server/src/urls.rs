//! Rules for URLs participants give the platform (notify and redirect URLs).

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
