//! SMS segments counted as a carrier bills them (3GPP TS 23.038 and 23.040): a text in
//! the GSM 7-bit default alphabet goes as GSM-7, anything else as UCS-2.

/// How a text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmsEncoding {
    /// GSM 7-bit default alphabet: 160 septets in one SMS, 153 per part of a longer one
    /// (the other 7 carry the concatenation header). A character of the extension table
    /// takes two septets (an escape, then the character).
    Gsm7,
    /// UCS-2 (in practice UTF-16): 70 code units in one SMS, 67 per part. A character
    /// outside the Basic Multilingual Plane, such as most emoji, takes two.
    Ucs2,
}

/// What a text costs: its encoding, its length in that encoding's units (septets or
/// UTF-16 code units), and the number of SMS segments billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmsLength {
    pub encoding: SmsEncoding,
    pub units: usize,
    pub segments: usize,
}

const GSM7_SINGLE: usize = 160;
const GSM7_PART: usize = 153;
const UCS2_SINGLE: usize = 70;
const UCS2_PART: usize = 67;

/// The GSM 7-bit default alphabet (TS 23.038 §6.2.1), in code order. 0x1B, the escape to
/// the extension table, is left out: it is no character of its own.
const GSM7_BASIC: &str = concat!(
    "@£$¥èéùìòÇ\nØø\rÅå",
    "Δ_ΦΓΛΩΠΨΣΘΞ",
    "ÆæßÉ",
    " !\"#¤%&'()*+,-./",
    "0123456789:;<=>?",
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§",
    "¿abcdefghijklmnopqrstuvwxyzäöñüà",
);

/// The default alphabet extension table (TS 23.038 §6.2.1.1): each costs an escape too.
const GSM7_EXTENSION: &str = "\u{000C}^{}\\[~]|€";

/// Septets one character takes in GSM-7, or `None` when GSM-7 cannot carry it.
fn gsm7_septets(c: char) -> Option<usize> {
    if GSM7_BASIC.contains(c) {
        Some(1)
    } else if GSM7_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Measures `text` as a carrier would: GSM-7 when every character is in its alphabet,
/// else UCS-2. An empty text is still one (empty) SMS.
pub fn measure(text: &str) -> SmsLength {
    let septets: Option<Vec<usize>> = text.chars().map(gsm7_septets).collect();
    let (encoding, widths, single, part) = match septets {
        Some(widths) => (SmsEncoding::Gsm7, widths, GSM7_SINGLE, GSM7_PART),
        None => (SmsEncoding::Ucs2, text.chars().map(char::len_utf16).collect(), UCS2_SINGLE, UCS2_PART),
    };
    let units = widths.iter().sum();
    let segments = if units <= single { 1 } else { parts(&widths, part) };
    SmsLength { encoding, units, segments }
}

/// Parts of a concatenated SMS. A character is never split between two parts (neither an
/// escape from its extension character nor a surrogate pair), so a part may end one unit
/// short and the count can exceed a plain division.
fn parts(widths: &[usize], capacity: usize) -> usize {
    let mut parts = 1;
    let mut used = 0;
    for &width in widths {
        if used + width > capacity {
            parts += 1;
            used = 0;
        }
        used += width;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gsm(text: &str) -> SmsLength {
        let length = measure(text);
        assert_eq!(length.encoding, SmsEncoding::Gsm7, "{text:?} should be GSM-7");
        length
    }

    fn ucs2(text: &str) -> SmsLength {
        let length = measure(text);
        assert_eq!(length.encoding, SmsEncoding::Ucs2, "{text:?} should be UCS-2");
        length
    }

    #[test]
    fn the_basic_table_has_its_128_characters_less_the_escape() {
        assert_eq!(GSM7_BASIC.chars().count(), 127);
        let unique: std::collections::BTreeSet<char> = GSM7_BASIC.chars().collect();
        assert_eq!(unique.len(), 127, "no character twice");
        assert!(GSM7_EXTENSION.chars().all(|c| !GSM7_BASIC.contains(c)));
    }

    #[test]
    fn gsm7_fits_160_in_one_and_153_per_part() {
        assert_eq!(gsm(&"a".repeat(160)), SmsLength { encoding: SmsEncoding::Gsm7, units: 160, segments: 1 });
        assert_eq!(gsm(&"a".repeat(161)).segments, 2);
        assert_eq!(gsm(&"a".repeat(306)).segments, 2);
        assert_eq!(gsm(&"a".repeat(307)).segments, 3);
        assert_eq!(gsm("").segments, 1);
    }

    #[test]
    fn an_extension_character_counts_double() {
        for c in ['^', '{', '}', '\\', '[', '~', ']', '|', '€', '\u{000C}'] {
            assert_eq!(gsm(&c.to_string()).units, 2, "{c:?}");
        }
        // 158 + 2 = 160 fits; 159 + 2 = 161 does not.
        assert_eq!(gsm(&format!("{}€", "a".repeat(158))).segments, 1);
        assert_eq!(gsm(&format!("{}€", "a".repeat(159))).segments, 2);
    }

    #[test]
    fn an_escape_is_never_split_from_its_character() {
        // 306 septets would fill two parts of 153 exactly, but the escape pair after 152
        // septets cannot straddle the end of part one: it opens part two, which then
        // overflows by one septet into a third.
        let straddling = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(gsm(&straddling).units, 306);
        assert_eq!(gsm(&straddling).segments, 3);
        // The same septets with the pair wholly inside part one: 2 parts.
        let inside = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(gsm(&inside).units, 306);
        assert_eq!(gsm(&inside).segments, 2);
    }

    #[test]
    fn ucs2_fits_70_in_one_and_67_per_part() {
        assert_eq!(ucs2(&"ó".repeat(70)), SmsLength { encoding: SmsEncoding::Ucs2, units: 70, segments: 1 });
        assert_eq!(ucs2(&"ó".repeat(71)).segments, 2);
        assert_eq!(ucs2(&"ó".repeat(134)).segments, 2);
        assert_eq!(ucs2(&"ó".repeat(135)).segments, 3);
        // One character outside GSM-7 turns the whole text into UCS-2.
        let mostly_gsm = format!("{}ã", "a".repeat(69));
        assert_eq!(ucs2(&mostly_gsm).segments, 1);
        assert_eq!(ucs2(&format!("a{mostly_gsm}")).segments, 2);
    }

    #[test]
    fn an_emoji_is_two_utf16_units_and_never_split() {
        assert_eq!(ucs2("🔑").units, 2);
        assert_eq!(ucs2(&format!("{}🔑", "a".repeat(68))).segments, 1);
        assert_eq!(ucs2(&format!("{}🔑", "a".repeat(69))).segments, 2);
        // 66 units, then a pair that would straddle the end of part one: it moves to part
        // two, which then holds 2 + 66 = 68 > 67, so a third part begins.
        let straddling = format!("{}🔑{}", "a".repeat(66), "a".repeat(66));
        assert_eq!(ucs2(&straddling).units, 134);
        assert_eq!(ucs2(&straddling).segments, 3);
    }

    #[test]
    fn accents_outside_the_alphabet_are_ucs2_and_those_inside_are_not() {
        for c in ['ó', 'á', 'í', 'ú', 'ã', 'õ', 'ç', 'ê', 'â'] {
            assert_eq!(measure(&c.to_string()).encoding, SmsEncoding::Ucs2, "{c:?}");
        }
        for c in ['é', 'è', 'à', 'ù', 'ì', 'ò', 'ä', 'ö', 'ü', 'ß', 'ñ', 'Ç', 'É', '\n'] {
            assert_eq!(measure(&c.to_string()).encoding, SmsEncoding::Gsm7, "{c:?}");
        }
    }
}
