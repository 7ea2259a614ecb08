//! SMS texts per locale: short (one SMS segment), the code early so it shows in
//! notification previews, and a last line in the WebOTP format lets browsers fill the code in for a domain.

use super::code::OtpCode;

/// Renders the SMS for `code`. `locale` is a BCP 47 tag (`es-MX`); only its language
/// is used, and an unknown language gets the English text.
pub fn render_sms(locale: Option<&str>, code: &OtpCode, ttl_minutes: i64, webotp_domain: Option<&str>) -> String {
    let code = code.expose();
    let language = locale.and_then(|l| l.split(['-', '_']).next()).map(str::to_ascii_lowercase);
    let text = match language.as_deref() {
        Some("es") => format!("Tu código es {code}. Caduca en {ttl_minutes} min. No lo compartas."),
        Some("fr") => format!("Votre code est {code}. Il expire dans {ttl_minutes} min. Ne le partagez pas."),
        Some("de") => format!("Ihr Code lautet {code}. Er läuft in {ttl_minutes} Min. ab. Geben Sie ihn nicht weiter."),
        Some("pt") => format!("Seu código é {code}. Expira em {ttl_minutes} min. Não o compartilhe."),
        _ => format!("Your code is {code}. It expires in {ttl_minutes} min. Do not share it."),
    };
    match webotp_domain {
        Some(domain) => format!("{text}\n\n@{domain} #{code}"),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::code::CodeLength;

    fn code() -> OtpCode {
        OtpCode::parse("482913", CodeLength::default()).unwrap()
    }

    #[test]
    fn every_locale_carries_the_code_and_lifetime() {
        let mut texts = std::collections::BTreeSet::new();
        for locale in ["en", "es", "fr", "de", "pt"] {
            let text = render_sms(Some(locale), &code(), 10, None);
            assert!(text.contains(" 482913."), "{locale}: {text}");
            assert!(text.contains("10"), "{locale}: {text}");
            texts.insert(text);
        }
        assert_eq!(texts.len(), 5, "each locale has its own text");
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
}
