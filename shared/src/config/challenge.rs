//! The bot challenge's settings (`OTP_CAPTCHA` and its companions), parsed into their
//! final types: the provider, its siteverify URL, the action and the score it must report.

use std::fmt;
use std::str::FromStr;

use super::url::EndpointUrl;

/// The action the frontend names in `grecaptcha.execute(siteKey, {action})`, and the
/// one reCAPTCHA tokens are checked for unless `OTP_CAPTCHA_ACTION` names another.
pub const DEFAULT_ACTION: &str = "send_otp";
/// Google's suggested starting threshold for reCAPTCHA v3 (0.0 is a bot, 1.0 a human).
pub const DEFAULT_MIN_SCORE: f64 = 0.5;

/// Which provider issues the challenge (`OTP_CAPTCHA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CaptchaProvider {
    Turnstile,
    Hcaptcha,
    Recaptcha,
}

impl CaptchaProvider {
    pub const ALL: [CaptchaProvider; 3] = [Self::Turnstile, Self::Hcaptcha, Self::Recaptcha];

    /// The name `OTP_CAPTCHA` uses, and logs show.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Turnstile => "turnstile",
            Self::Hcaptcha => "hcaptcha",
            Self::Recaptcha => "recaptcha",
        }
    }

    /// The provider's production siteverify endpoint.
    pub const fn default_verify_url(self) -> &'static str {
        match self {
            Self::Turnstile => "https://challenges.cloudflare.com/turnstile/v0/siteverify",
            Self::Hcaptcha => "https://api.hcaptcha.com/siteverify",
            Self::Recaptcha => "https://www.google.com/recaptcha/api/siteverify",
        }
    }

    /// The provider's production endpoint, parsed.
    pub fn default_endpoint(self) -> EndpointUrl {
        // Constants, each checked by a unit test.
        EndpointUrl::parse(self.default_verify_url()).unwrap_or_else(|e| unreachable!("{e}"))
    }
}

impl fmt::Display for CaptchaProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CaptchaProvider {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = raw.trim();
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| format!("must be `turnstile`, `hcaptcha` or `recaptcha` (or empty for none), not {name:?}"))
    }
}

/// A reCAPTCHA v3 score threshold within 0 and 1 (never NaN, so it is `Eq`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinScore(f64);

impl Eq for MinScore {}

impl MinScore {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let score: f64 = raw.trim().parse().map_err(|_| format!("{raw:?} is not a number"))?;
        Self::new(score).ok_or_else(|| format!("{raw:?} must be within 0 and 1"))
    }

    pub fn new(score: f64) -> Option<Self> {
        (0.0..=1.0).contains(&score).then_some(Self(score))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for MinScore {
    fn default() -> Self {
        Self(DEFAULT_MIN_SCORE)
    }
}

/// The bot challenge as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaSettings {
    pub provider: CaptchaProvider,
    /// `OTP_CAPTCHA_VERIFY_URL`, else the provider's own siteverify.
    pub verify_url: EndpointUrl,
    /// The action the answer must report (`OTP_CAPTCHA_ACTION`): for reCAPTCHA always
    /// (default [`DEFAULT_ACTION`]), for Turnstile when set; hCaptcha reports none.
    pub expected_action: Option<String>,
    /// reCAPTCHA's lowest accepted score (`OTP_CAPTCHA_MIN_SCORE`).
    pub min_score: MinScore,
}

impl CaptchaSettings {
    /// A provider with its defaults: its own endpoint, the default action for reCAPTCHA
    /// (none for the others), the default score.
    pub fn new(provider: CaptchaProvider) -> Self {
        Self {
            provider,
            verify_url: provider.default_endpoint(),
            expected_action: (provider == CaptchaProvider::Recaptcha).then(|| DEFAULT_ACTION.to_owned()),
            min_score: MinScore::default(),
        }
    }
}

/// Which of the challenge's settings is wrong, and why.
pub type ChallengeSettingError = (&'static str, String);

/// `OTP_CAPTCHA` and its companions as `text` gives them (`None`: unset or blank).
pub fn captcha_settings(
    text: impl Fn(&str) -> Option<String>,
) -> Result<Option<CaptchaSettings>, ChallengeSettingError> {
    // Without a provider its companions are not read (the template passes them all).
    let Some(provider) = text("OTP_CAPTCHA") else { return Ok(None) };
    let provider: CaptchaProvider = provider.parse().map_err(|reason| ("OTP_CAPTCHA", reason))?;
    let mut settings = CaptchaSettings::new(provider);
    if let Some(url) = text("OTP_CAPTCHA_VERIFY_URL") {
        settings.verify_url = EndpointUrl::parse(&url).map_err(|reason| ("OTP_CAPTCHA_VERIFY_URL", reason))?;
    }
    if let Some(action) = text("OTP_CAPTCHA_ACTION") {
        if provider == CaptchaProvider::Hcaptcha {
            return Err(("OTP_CAPTCHA_ACTION", "hCaptcha reports no action to check".into()));
        }
        let fits = action.len() <= 100 && action.bytes().all(|b| b.is_ascii_alphanumeric() || b"_/".contains(&b));
        if !fits {
            return Err(("OTP_CAPTCHA_ACTION", "use at most 100 letters, digits, `_` and `/`".into()));
        }
        settings.expected_action = Some(action);
    }
    if let Some(score) = text("OTP_CAPTCHA_MIN_SCORE") {
        if provider != CaptchaProvider::Recaptcha {
            return Err(("OTP_CAPTCHA_MIN_SCORE", "only reCAPTCHA reports a score".into()));
        }
        settings.min_score = MinScore::parse(&score).map_err(|reason| ("OTP_CAPTCHA_MIN_SCORE", reason))?;
    }
    Ok(Some(settings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(pairs: &[(&str, &str)]) -> Result<Option<CaptchaSettings>, ChallengeSettingError> {
        let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        captcha_settings(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn every_default_verify_url_is_https_and_parses() {
        for provider in CaptchaProvider::ALL {
            assert!(provider.default_endpoint().as_str().starts_with("https://"), "{provider}");
            assert_eq!(provider.name().parse::<CaptchaProvider>(), Ok(provider));
        }
        assert_eq!(" ReCaptcha ".parse::<CaptchaProvider>(), Ok(CaptchaProvider::Recaptcha));
        assert_eq!(" hCaptcha ".parse::<CaptchaProvider>(), Ok(CaptchaProvider::Hcaptcha));
        for wrong in ["", "recaptcha-v2", "cloudflare", "h captcha", "friendly"] {
            let error = wrong.parse::<CaptchaProvider>().unwrap_err();
            assert!(error.contains("`turnstile`, `hcaptcha` or `recaptcha`"), "{wrong:?}: {error}");
        }
        assert_eq!(CaptchaProvider::Turnstile.to_string(), "turnstile");
    }

    #[test]
    fn each_provider_gets_its_defaults() {
        assert_eq!(read(&[]), Ok(None));
        let recaptcha = read(&[("OTP_CAPTCHA", "recaptcha")]).unwrap().unwrap();
        assert_eq!(recaptcha.expected_action.as_deref(), Some(DEFAULT_ACTION));
        assert_eq!(recaptcha.min_score.get(), DEFAULT_MIN_SCORE);
        assert_eq!(recaptcha.verify_url.as_str(), "https://www.google.com/recaptcha/api/siteverify");
        let turnstile = read(&[("OTP_CAPTCHA", "turnstile")]).unwrap().unwrap();
        assert_eq!(turnstile.expected_action, None, "Turnstile's action is checked only when configured");
    }

    #[test]
    fn the_action_the_score_and_the_url_are_read_and_checked() {
        let s = read(&[
            ("OTP_CAPTCHA", "recaptcha"),
            ("OTP_CAPTCHA_ACTION", "login"),
            ("OTP_CAPTCHA_MIN_SCORE", "0.7"),
            ("OTP_CAPTCHA_VERIFY_URL", "http://127.0.0.1:9000/recaptcha/api/siteverify"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(s.expected_action.as_deref(), Some("login"));
        assert_eq!(s.min_score.get(), 0.7);
        assert_eq!(s.verify_url.as_str(), "http://127.0.0.1:9000/recaptcha/api/siteverify");
        let turnstile = read(&[("OTP_CAPTCHA", "turnstile"), ("OTP_CAPTCHA_ACTION", "send_otp")]).unwrap().unwrap();
        assert_eq!(turnstile.expected_action.as_deref(), Some("send_otp"));

        for (pairs, variable) in [
            (&[("OTP_CAPTCHA", "friendly")][..], "OTP_CAPTCHA"),
            (&[("OTP_CAPTCHA", "recaptcha"), ("OTP_CAPTCHA_MIN_SCORE", "1.5")][..], "OTP_CAPTCHA_MIN_SCORE"),
            (&[("OTP_CAPTCHA", "recaptcha"), ("OTP_CAPTCHA_MIN_SCORE", "NaN")][..], "OTP_CAPTCHA_MIN_SCORE"),
            (&[("OTP_CAPTCHA", "recaptcha"), ("OTP_CAPTCHA_MIN_SCORE", "-0.1")][..], "OTP_CAPTCHA_MIN_SCORE"),
            (&[("OTP_CAPTCHA", "turnstile"), ("OTP_CAPTCHA_MIN_SCORE", "0.5")][..], "OTP_CAPTCHA_MIN_SCORE"),
            (&[("OTP_CAPTCHA", "hcaptcha"), ("OTP_CAPTCHA_ACTION", "send_otp")][..], "OTP_CAPTCHA_ACTION"),
            (&[("OTP_CAPTCHA", "turnstile"), ("OTP_CAPTCHA_ACTION", "send otp")][..], "OTP_CAPTCHA_ACTION"),
            (
                &[("OTP_CAPTCHA", "hcaptcha"), ("OTP_CAPTCHA_VERIFY_URL", "http://captcha.example/")][..],
                "OTP_CAPTCHA_VERIFY_URL",
            ),
            (
                &[("OTP_CAPTCHA", "hcaptcha"), ("OTP_CAPTCHA_VERIFY_URL", "https://user:pass@hcaptcha.example/")][..],
                "OTP_CAPTCHA_VERIFY_URL",
            ),
        ] {
            assert_eq!(read(pairs).map_err(|(name, _)| name), Err(variable), "{pairs:?}");
        }
    }
}
