//! The URLs the service calls with a secret or a code in the request (Twilio's API, a
//! challenge's siteverify, later a status callback): one rule, parsed once with the
//! settings, so a bad URL is a setting error at start-up and never a 503 at a request.

use std::net::IpAddr;

/// `https://` to any host, or `http://` only to this machine (`localhost`, `127.0.0.0/8`,
/// `[::1]`: a local fake), never with a user name or password in it. Parse, don't
/// validate: an `EndpointUrl` is always one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(reqwest::Url);

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let url = reqwest::Url::parse(raw).map_err(|error| format!("{error} in {raw:?}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        let host = url.host_str().unwrap_or_default();
        match url.scheme() {
            "https" if !host.is_empty() => Ok(Self(url)),
            "http" if is_loopback(host) => Ok(Self(url)),
            "http" => Err(format!("{raw:?} is plain http to another machine (http:// is only for loopback)")),
            _ => Err(format!("{raw:?} must be https:// (or http:// to localhost / 127.0.0.1 / [::1])")),
        }
    }

    /// The URL as given, normalised (`https://api.twilio.com/`).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The URL without the trailing `/` of an empty path, to put a path after
    /// (`https://api.twilio.com`).
    pub fn base(&self) -> &str {
        self.0.as_str().trim_end_matches('/')
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_to_this_machine() {
        for good in [
            "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            "https://siteverify.internal.example:8443/x",
            "https://api.twilio.com",
            "http://127.0.0.1:8000/siteverify",
            "http://127.1.2.3:3002",
            "http://localhost:3002/",
            "http://LOCALHOST:3002/",
            "http://[::1]:8000/siteverify",
            " https://api.twilio.com/ ",
        ] {
            assert!(EndpointUrl::parse(good).is_ok(), "{good} should be accepted");
        }
        for bad in [
            "",
            "api.twilio.com",
            "ftp://127.0.0.1/",
            "http://captcha.example/siteverify",
            "http://127.0.0.1.evil.example/",
            "http://10.0.0.1:3002",
            "http://localhost.evil.example/siteverify",
            "http://[::2]/siteverify",
            "http://0.0.0.0:3003/siteverify",
            "https://user:pass@challenges.cloudflare.com/turnstile/v0/siteverify",
            "http://user@127.0.0.1:3002",
            "https://",
            "file:///etc/passwd",
        ] {
            assert!(EndpointUrl::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn the_base_has_no_trailing_slash() {
        assert_eq!(EndpointUrl::parse("https://api.twilio.com/").unwrap().base(), "https://api.twilio.com");
        assert_eq!(EndpointUrl::parse("http://127.0.0.1:3002").unwrap().base(), "http://127.0.0.1:3002");
        assert_eq!(EndpointUrl::parse("http://127.0.0.1:3002/x/").unwrap().base(), "http://127.0.0.1:3002/x");
    }
}
