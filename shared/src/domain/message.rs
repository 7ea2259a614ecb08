//! SMS texts per locale: one SMS segment each (counted as a carrier does, `segment.rs`),
//! the code early so it shows in notification previews, and a last line in the WebOTP
//! format lets browsers fill the code in for a domain.

use super::code::{CodeLength, OtpCode};
use super::segment;

/// The languages with a text of their own; any other gets the English one.
pub const LANGUAGES: [&str; 5] = ["en", "es", "fr", "de", "pt"];

/// The longest code lifetime, in minutes, that every text is checked to fit one segment
/// with: any 7-digit figure, beyond the 10 years (5,256,000 minutes) that the settings
/// accept for a duration.
pub const MAX_TTL_MINUTES: i64 = 9_999_999;

/// The longest WebOTP domain allowed. With it, the longest text (German, a 10-digit code,
/// a 7-digit lifetime) and its WebOTP line take 159 of one GSM-7 segment's 160 septets;
/// the domain is ASCII by `check_webotp_domain`, so its every character is one septet.
pub const MAX_WEBOTP_DOMAIN_LEN: usize = 60;

/// A code lifetime as the texts say it: whole minutes, rounded up (a 90 s code "expires in
/// 2 min", never in less than it has).
pub fn ttl_minutes(ttl: chrono::TimeDelta) -> i64 {
    (ttl.num_seconds() + 59).div_euclid(60)
}

/// Renders the SMS for `code`. `locale` is a BCP 47 tag (`es-MX`); only its language
/// is used, and an unknown language gets the English text.
pub fn render_sms(locale: Option<&str>, code: &OtpCode, ttl_minutes: i64, webotp_domain: Option<&str>) -> String {
    let code = code.expose();
    let language = locale.and_then(|l| l.split(['-', '_']).next()).map(str::to_ascii_lowercase);
    // Every text stays within the GSM-7 alphabet: a single character outside it (Spanish
    // and Portuguese ó, Portuguese ã) sends the whole SMS as UCS-2, whose 70 characters
    // leave no room for the WebOTP line, so the SMS would bill as two. Rather than drop
    // accents (a misspelt word in a security message reads like phishing), Spanish and
    // Portuguese use words that need none: "clave" (as Spanish-speaking banks call a
    // one-time code) for "código", "senha" for "código" and "nunca" for "não". The é, ä
    // and à that remain are in the GSM-7 alphabet.
    let text = match language.as_deref() {
        Some("es") => format!("Tu clave es {code}. Caduca en {ttl_minutes} min. No la compartas."),
        Some("fr") => format!("Votre code est {code}. Il expire dans {ttl_minutes} min. Ne le partagez pas."),
        Some("de") => format!("Ihr Code lautet {code}. Er läuft in {ttl_minutes} Min. ab. Geben Sie ihn nicht weiter."),
        Some("pt") => format!("Sua senha é {code}. Expira em {ttl_minutes} min. Nunca a compartilhe."),
        _ => format!("Your code is {code}. It expires in {ttl_minutes} min. Do not share it."),
    };
    match webotp_domain {
        Some(domain) => format!("{text}\n\n@{domain} #{code}"),
        None => text,
    }
}

/// Checks a WebOTP domain for the settings: a host name in ASCII (an international name
/// in its `xn--` form, as browsers compare it) of at most `MAX_WEBOTP_DOMAIN_LEN`
/// characters, so that every text fits one SMS segment whatever the code length and
/// lifetime.
pub fn check_webotp_domain(domain: &str) -> Result<(), &'static str> {
    if domain.len() > MAX_WEBOTP_DOMAIN_LEN {
        return Err("is longer than 60 characters, which would make the SMS two segments");
    }
    let is_label = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if !domain.split('.').all(is_label) {
        return Err("must be a host name such as app.example.com (ASCII; international names in their xn-- form)");
    }
    Ok(())
}

/// Whether the SMS of every language fits one segment with these settings (any code of
/// that length: every digit is one GSM-7 septet).
pub fn fits_one_segment(code_length: CodeLength, ttl_minutes: i64, webotp_domain: Option<&str>) -> bool {
    let Ok(code) = OtpCode::parse(&"9".repeat(code_length.get()), code_length) else { return false };
    LANGUAGES
        .iter()
        .all(|language| segment::measure(&render_sms(Some(language), &code, ttl_minutes, webotp_domain)).segments == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::segment::{SmsEncoding, measure};

    fn code() -> OtpCode {
        OtpCode::parse("482913", CodeLength::default()).unwrap()
    }

    /// A valid host name of exactly `len` characters.
    fn domain_of(len: usize) -> String {
        format!("{}.example", "a".repeat(len - ".example".len()))
    }

    #[test]
    fn lifetimes_are_said_in_whole_minutes_rounded_up() {
        let minutes = |s| ttl_minutes(chrono::TimeDelta::seconds(s));
        assert_eq!([minutes(1), minutes(59), minutes(60), minutes(61), minutes(90), minutes(600)], [1, 1, 1, 2, 2, 10]);
    }

    #[test]
    fn every_locale_carries_the_code_and_lifetime() {
        let mut texts = std::collections::BTreeSet::new();
        for locale in LANGUAGES {
            let text = render_sms(Some(locale), &code(), 10, None);
            assert!(text.contains(" 482913."), "{locale}: {text}");
            assert!(text.contains(" 10 "), "{locale}: {text}");
            texts.insert(text);
        }
        assert_eq!(texts.len(), LANGUAGES.len(), "each locale has its own text");
    }

    #[test]
    fn region_subtags_and_case_are_ignored_and_unknown_falls_back_to_english() {
        let es = render_sms(Some("es"), &code(), 10, None);
        assert_eq!(render_sms(Some("ES-mx"), &code(), 10, None), es);
        assert_eq!(render_sms(Some("es_AR"), &code(), 10, None), es);
        let en = render_sms(None, &code(), 10, None);
        assert_eq!(render_sms(Some("xx"), &code(), 10, None), en);
        assert_eq!(render_sms(Some(""), &code(), 10, None), en);
        assert!(en.starts_with("Your code is 482913."));
    }

    #[test]
    fn webotp_line_is_last() {
        let text = render_sms(Some("fr"), &code(), 10, Some("app.example.com"));
        assert_eq!(text.lines().last(), Some("@app.example.com #482913"));
    }

    #[test]
    fn every_text_is_one_gsm7_segment_at_every_code_length_and_lifetime() {
        let longest_domain = domain_of(MAX_WEBOTP_DOMAIN_LEN);
        assert_eq!(check_webotp_domain(&longest_domain), Ok(()));
        let mut checked = 0;
        for digits in CodeLength::MIN..=CodeLength::MAX {
            let length = CodeLength::new(digits).unwrap();
            let code = OtpCode::parse(&"7".repeat(length.get()), length).unwrap();
            for ttl_minutes in [1, 10, 60, 1440, MAX_TTL_MINUTES] {
                for domain in [None, Some("app.example.com"), Some(longest_domain.as_str())] {
                    for locale in LANGUAGES.iter().copied().chain(["xx"]) {
                        let text = render_sms(Some(locale), &code, ttl_minutes, domain);
                        let measured = measure(&text);
                        assert_eq!(measured.encoding, SmsEncoding::Gsm7, "{locale}: {text:?}");
                        assert_eq!(measured.segments, 1, "{locale}, {} septets: {text:?}", measured.units);
                        checked += 1;
                    }
                }
                assert!(fits_one_segment(length, ttl_minutes, Some(&longest_domain)));
            }
        }
        assert_eq!(checked, 7 * 5 * 3 * 6);
    }

    #[test]
    fn the_domain_bound_is_what_the_longest_text_leaves() {
        let longest_code = CodeLength::new(CodeLength::MAX).unwrap();
        // Two characters more and the German text overflows the segment: the bound is not
        // set lower than it needs to be.
        let too_long = domain_of(MAX_WEBOTP_DOMAIN_LEN + 2);
        assert!(!fits_one_segment(longest_code, MAX_TTL_MINUTES, Some(&too_long)));
        let code = OtpCode::parse("1234567890", longest_code).unwrap();
        let german = measure(&render_sms(Some("de"), &code, MAX_TTL_MINUTES, Some(&too_long)));
        assert_eq!((german.encoding, german.units, german.segments), (SmsEncoding::Gsm7, 161, 2));
        // Shorter codes or lifetimes leave room for it.
        assert!(fits_one_segment(CodeLength::default(), 10, Some(&too_long)));
    }

    #[test]
    fn a_webotp_domain_is_an_ascii_host_name_within_the_bound() {
        for good in ["app.example.com", "localhost", "xn--bcher-kva.example", "a-b.example", &domain_of(60)] {
            assert_eq!(check_webotp_domain(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "bücher.example",
            "app.example.com:443",
            "https://app.example.com",
            "app example.com",
            "a..example",
            ".example",
            "example.",
            "-a.example",
            "a-.example",
            "a_b.example",
            "app{x}.example",
            &domain_of(61),
        ] {
            assert!(check_webotp_domain(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
