//! The words of every channel per locale. SMS texts: one SMS segment each (counted as a
//! carrier does, `segment.rs`), the code early so it shows in notification previews, and a
//! last line in the WebOTP format lets browsers fill the code in for a domain. The voice
//! script: the code's digits one by one, as words of the language, said twice. WhatsApp:
//! the variables of the approved authentication template, and its text for the outbox.

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
    let language = language_of(locale);
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

/// The language of a BCP 47 tag (`es-MX` is `es`), lower-cased.
fn language_of(locale: Option<&str>) -> Option<String> {
    locale.and_then(|l| l.split(['-', '_']).next()).map(str::to_ascii_lowercase)
}

/// What a call says: one `<Say>` per line, in `language` (a tag of Twilio's `<Say
/// language>`) with `voice` (one that speaks that language), with a pause between lines.
#[derive(Clone, PartialEq, Eq)]
pub struct VoiceScript {
    pub language: &'static str,
    pub voice: &'static str,
    pub lines: Vec<String>,
}

impl std::fmt::Debug for VoiceScript {
    // The lines say the code: logs get the language only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceScript").field("language", &self.language).finish_non_exhaustive()
    }
}

/// The digit words of each language with a script; any other language gets English.
const DIGIT_WORDS: [(&str, [&str; 10]); 5] = [
    ("en", ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]),
    ("es", ["cero", "uno", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve"]),
    ("pt", ["zero", "um", "dois", "três", "quatro", "cinco", "seis", "sete", "oito", "nove"]),
    ("fr", ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf"]),
    ("de", ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]),
];

/// The words a language says its digits with (`None`: a language without a script).
pub fn digit_words(language: &str) -> Option<&'static [&'static str; 10]> {
    DIGIT_WORDS.iter().find(|(l, _)| *l == language).map(|(_, words)| words)
}

/// The voices' language for a locale: its region where the voices have it (`pt-PT`,
/// `en-IN`, `fr-CA`; a language without a script gets English, in its region's English
/// where there is one: `hi-IN` is read in Indian English), else the language's widest
/// spoken form (Brazilian Portuguese, Latin
/// American Spanish: those a launch in Brazil and Latin America calls first).
/// The voices a call may speak in: each `<Say language>` tag with an Amazon Polly standard
/// voice of it, as Twilio names them. Twilio's default voice (`man`) speaks English,
/// Spanish, French, German and Italian only: a Brazilian call in it would fail, so every
/// call names its voice. The first of each language is its default.
pub const VOICES: [(&str, &str, &str); 12] = [
    ("en", "en-US", "Polly.Joanna"),
    ("en", "en-GB", "Polly.Amy"),
    ("en", "en-AU", "Polly.Nicole"),
    ("en", "en-IN", "Polly.Raveena"),
    ("es", "es-MX", "Polly.Mia"),
    ("es", "es-ES", "Polly.Lucia"),
    ("es", "es-US", "Polly.Lupe"),
    ("pt", "pt-BR", "Polly.Camila"),
    ("pt", "pt-PT", "Polly.Ines"),
    ("fr", "fr-FR", "Polly.Celine"),
    ("fr", "fr-CA", "Polly.Chantal"),
    ("de", "de-DE", "Polly.Marlene"),
];

/// The script's language, its `<Say>` tag and voice for `locale`: its region's where one is
/// listed, else the language's first; English for a language without a script.
fn voice_language(locale: Option<&str>) -> (&'static str, &'static str, &'static str) {
    let language = language_of(locale).filter(|l| VOICES.iter().any(|(language, _, _)| language == l));
    let language = language.as_deref().unwrap_or("en");
    let region = locale.and_then(|l| l.split(['-', '_']).nth(1)).map(str::to_ascii_uppercase);
    let voices = || VOICES.iter().filter(|(l, _, _)| *l == language);
    let regional = region.and_then(|region| voices().find(|(_, tag, _)| tag.ends_with(&format!("-{region}"))));
    let (language, tag, voice) = regional.or_else(|| voices().next()).copied().unwrap_or(VOICES[0]);
    (language, tag, voice)
}

/// The call's script for `code`: the digits one by one, as words of the locale's language
/// (a digit read as a numeral can be taken for a number or, in German, an ordinal), said
/// twice, and a warning not to share it.
pub fn voice_script(locale: Option<&str>, code: &OtpCode) -> VoiceScript {
    let (language, tag, voice) = voice_language(locale);
    let words = digit_words(language).unwrap_or(&DIGIT_WORDS[0].1);
    let digits =
        code.expose().bytes().map(|b| words[usize::from(b.wrapping_sub(b'0')).min(9)]).collect::<Vec<_>>().join(", ");
    let lines = match language {
        "es" => [
            format!("Tu código de verificación es: {digits}."),
            format!("Repito, tu código es: {digits}."),
            "No lo compartas con nadie. Adiós.".to_owned(),
        ],
        "pt" => [
            format!("Seu código de verificação é: {digits}."),
            format!("Repetindo, seu código é: {digits}."),
            "Não o compartilhe com ninguém. Até logo.".to_owned(),
        ],
        "fr" => [
            format!("Votre code de vérification est : {digits}."),
            format!("Je répète, votre code est : {digits}."),
            "Ne le partagez avec personne. Au revoir.".to_owned(),
        ],
        "de" => [
            format!("Ihr Bestätigungscode lautet: {digits}."),
            format!("Noch einmal, Ihr Code lautet: {digits}."),
            "Geben Sie ihn nicht weiter. Auf Wiederhören.".to_owned(),
        ],
        _ => [
            format!("Your verification code is: {digits}."),
            format!("Again, your code is: {digits}."),
            "Do not share it with anyone. Goodbye.".to_owned(),
        ],
    };
    VoiceScript { language: tag, voice, lines: lines.into() }
}

/// An approved WhatsApp authentication template, filled in: its variables (Twilio's
/// `ContentVariables`), and the text it shows, for the local run's outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct WhatsappTemplate {
    /// `{{1}}` is the code: Meta's authentication templates take the code and nothing
    /// else, in every language (the copy-code button reuses it).
    pub variables: Vec<(String, String)>,
    /// The template's text in the locale's language, as Meta words authentication
    /// templates. What the phone shows is the approved template's own text.
    pub preview: String,
}

impl std::fmt::Debug for WhatsappTemplate {
    // The variables and the text hold the code.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhatsappTemplate").finish_non_exhaustive()
    }
}

/// The WhatsApp template's variables and text for `code`.
pub fn whatsapp_template(locale: Option<&str>, code: &OtpCode) -> WhatsappTemplate {
    let code = code.expose();
    let preview = match language_of(locale).as_deref() {
        Some("es") => format!("*{code}* es tu código de verificación. Por tu seguridad, no lo compartas."),
        Some("pt") => format!("*{code}* é seu código de verificação. Para sua segurança, não o compartilhe."),
        Some("fr") => format!("*{code}* est votre code de vérification. Pour votre sécurité, ne le partagez pas."),
        Some("de") => format!("*{code}* ist dein Bestätigungscode. Teile diesen Code aus Sicherheitsgründen nicht."),
        _ => format!("*{code}* is your verification code. For your security, do not share this code."),
    };
    WhatsappTemplate { variables: vec![("1".to_owned(), code.to_owned())], preview }
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

    /// The code a script says, read back from its words.
    fn said(script: &VoiceScript, line: usize, language: &str) -> String {
        let words = digit_words(language).unwrap();
        let text = &script.lines[line];
        let digits = text.rsplit(':').next().unwrap().trim().trim_end_matches('.');
        digits
            .split(", ")
            .map(|word| {
                let d = words.iter().position(|w| *w == word).unwrap_or_else(|| panic!("{word:?} in {text}"));
                char::from(b'0' + d as u8)
            })
            .collect()
    }

    #[test]
    fn the_voice_script_says_each_digit_in_the_language_twice() {
        let code = OtpCode::parse("4829130", CodeLength::new(7).unwrap()).unwrap();
        let mut firsts = std::collections::BTreeSet::new();
        for (locale, tag, language, zero) in [
            ("en", "en-US", "en", "zero"),
            ("es", "es-MX", "es", "cero"),
            ("pt", "pt-BR", "pt", "zero"),
            ("fr", "fr-FR", "fr", "zéro"),
            ("de", "de-DE", "de", "null"),
        ] {
            let script = voice_script(Some(locale), &code);
            assert_eq!(script.language, tag, "{locale}");
            assert_eq!(script.lines.len(), 3);
            assert_eq!(said(&script, 0, language), "4829130", "{locale}: {:?}", script.lines);
            assert_eq!(said(&script, 1, language), "4829130", "said twice: {locale}");
            assert!(script.lines[0].ends_with(&format!(", {zero}.")), "{locale}: {}", script.lines[0]);
            assert!(!script.lines.concat().bytes().any(|b| b.is_ascii_digit()), "no numerals: {:?}", script.lines);
            firsts.insert(script.lines[0].clone());
        }
        assert_eq!(firsts.len(), 5, "each language has its own words");
        assert!(voice_script(Some("pt"), &code).lines[0].contains("quatro, oito, dois, nove, um, três, zero"));
        assert!(voice_script(Some("es"), &code).lines[0].contains("cuatro, ocho, dos, nueve, uno, tres, cero"));
        assert!(voice_script(Some("fr"), &code).lines[0].contains("quatre, huit, deux, neuf, un, trois, zéro"));
    }

    #[test]
    fn the_voices_follow_the_locales_region_where_they_have_it() {
        let tag = |locale| voice_script(Some(locale), &code()).language;
        assert_eq!([tag("pt-PT"), tag("pt-br"), tag("pt_AO")], ["pt-PT", "pt-BR", "pt-BR"]);
        assert_eq!(
            [tag("en-IN"), tag("en-gb"), tag("es-ES"), tag("es-AR"), tag("fr-CA")],
            ["en-IN", "en-GB", "es-ES", "es-MX", "fr-CA"]
        );
        // A language without a script gets English words, in the region's English where the
        // voices have it: Hindi in India is read in Indian English.
        assert_eq!(voice_script(Some("hi-IN"), &code()).language, "en-IN");
        assert_eq!(voice_script(Some("hi-IN"), &code()).lines, voice_script(None, &code()).lines);
        assert_eq!(voice_script(Some("xx"), &code()), voice_script(None, &code()));
        assert_eq!(voice_script(None, &code()).language, "en-US");
        // Every call names a voice of its language: Twilio's default (`man`) has no
        // Portuguese, so a Brazilian call would fail without one.
        let voice = |locale| voice_script(Some(locale), &code()).voice;
        assert_eq!(
            [voice("pt-BR"), voice("pt"), voice("es"), voice("fr-CA")],
            ["Polly.Camila", "Polly.Camila", "Polly.Mia", "Polly.Chantal"]
        );
        for (language, tag, voice) in VOICES {
            assert!(tag.starts_with(&format!("{language}-")) && voice.starts_with("Polly."), "{tag} {voice}");
            assert_eq!(voice_script(Some(tag), &code()).voice, voice, "{tag}");
            assert!(digit_words(language).is_some(), "{language} has its digit words");
        }
    }

    #[test]
    fn the_whatsapp_variables_are_the_code_alone_and_the_text_is_the_locales() {
        let mut previews = std::collections::BTreeSet::new();
        for locale in ["en", "es", "pt", "fr", "de"] {
            let template = whatsapp_template(Some(locale), &code());
            assert_eq!(template.variables, [("1".to_owned(), "482913".to_owned())], "{locale}");
            assert!(template.preview.starts_with("*482913* "), "{locale}: {}", template.preview);
            previews.insert(template.preview);
        }
        assert_eq!(previews.len(), 5);
        assert!(whatsapp_template(Some("pt-BR"), &code()).preview.contains("código de verificação"));
        assert_eq!(whatsapp_template(Some("xx"), &code()), whatsapp_template(None, &code()));
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
