//! GSM 03.38 / 3GPP TS 23.038 default alphabet with its extension table (reference §8.8),
//! and septet packing (reference §8.7).
//!
//! In SMPP, data_coding 0 text is carried *unpacked*: one septet per octet (§8.6).
//! Packing is only needed when building air-interface TPDUs.
//!
//! The national language tables of 23.038 Annex A ([`crate::gsm7_national`]) are used
//! through a [`Shift`]: the `_in` functions take one, the others read and write the
//! default alphabet and extension table.

use crate::text::TextError;

pub use crate::gsm7_national::NationalLanguage;

/// The tables a GSM 7-bit text is read and written with: `locking` in place of the
/// default alphabet (UDH IEI 0x25), `single` in place of the extension table after ESC
/// (UDH IEI 0x24). The default value is the default alphabet and extension table.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Shift {
    pub locking: NationalLanguage,
    pub single: NationalLanguage,
}

impl Shift {
    /// The default alphabet with the default extension table.
    pub const DEFAULT: Shift = Shift {
        locking: NationalLanguage::DEFAULT,
        single: NationalLanguage::DEFAULT,
    };

    /// The locking and single shift tables of one language.
    pub const fn both(language: NationalLanguage) -> Shift {
        Shift {
            locking: language,
            single: language,
        }
    }

    fn tables(self) -> Tables {
        Tables {
            locking: self.locking.locking_table(),
            single: self.single.single_shift_table(),
        }
    }
}

/// The resolved tables of a [`Shift`]; `None`: the default one ([`BASIC`] / [`EXTENSION`]).
#[derive(Clone, Copy)]
struct Tables {
    locking: Option<&'static [char; 128]>,
    single: Option<&'static [char; 128]>,
}

impl Tables {
    fn is_default(self) -> bool {
        self.locking.is_none() && self.single.is_none()
    }

    /// The character of a septet outside an escape; `None` where the table has none.
    fn base(self, septet: u8) -> Option<char> {
        match self.locking {
            None => Some(BASIC[usize::from(septet)]),
            Some(t) => Some(t[usize::from(septet)]).filter(|&c| c != '\0'),
        }
    }

    /// The character of `ESC code`; `None` where the table has none.
    fn shifted(self, code: u8) -> Option<char> {
        match self.single {
            None => extension_char(code),
            Some(t) => t
                .get(usize::from(code))
                .copied()
                .filter(|&c| c != '\0' && code != ESC),
        }
    }

    /// The septet(s) of one character: the locking table first, then the single shift
    /// table (as 23.038 §6.2.1.2.4 and every implementation read them: a character in
    /// both costs one septet).
    fn encode(self, c: char) -> Option<(u8, Option<u8>)> {
        if self.is_default() {
            return encode_char(c);
        }
        let in_locking = match self.locking {
            None => BASIC
                .iter()
                .position(|&b| b == c)
                .filter(|&i| i != usize::from(ESC)),
            Some(t) => position(t, c),
        };
        if let Some(code) = in_locking.and_then(|i| u8::try_from(i).ok()) {
            return Some((code, None));
        }
        let in_single = match self.single {
            None => EXTENSION
                .iter()
                .find(|&&(_, e)| e == c)
                .map(|&(code, _)| code),
            Some(t) => position(t, c).and_then(|i| u8::try_from(i).ok()),
        };
        match in_single {
            Some(code) => Some((ESC, Some(code))),
            // The default alphabet's ç alias (see `encode_char`), unless a single
            // shift table (Turkish, Spanish, Portuguese) holds ç itself.
            None if self.locking.is_none() && c == 'ç' => Some((0x09, None)),
            None => None,
        }
    }
}

/// The first code of `c` in a national table (never the escape, never an undefined code).
fn position(table: &[char; 128], c: char) -> Option<usize> {
    if c == '\0' {
        return None;
    }
    table
        .iter()
        .position(|&t| t == c)
        .filter(|&i| i != usize::from(ESC))
}

/// The escape septet: the next septet is read from the extension table.
pub const ESC: u8 = 0x1B;

/// Default alphabet, septet → char. Index 0x1B is ESC and never decoded through this
/// table; it holds NBSP only as a placeholder (the unicode.org mapping of a lone ESC).
const BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{A0}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// Extension table: septet after ESC → char. `1B 0D` (CR2) and `1B 1B` (SS2) have no
/// Unicode mapping and are treated like any other undefined pair.
pub const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// The septet(s) for one character: `[code]` or `[ESC, code]`.
/// The basic-table code of each ASCII character that has one (`NONE`: it has not, or
/// it is an extension character): the common case of `encode_char` without searching
/// the tables (a receipt is ~110 ASCII characters, encoded once per receipt).
const ASCII_TO_GSM: [u8; 128] = ascii_to_gsm();
const NONE: u8 = 0xFF;

const fn ascii_to_gsm() -> [u8; 128] {
    let mut table = [NONE; 128];
    let mut i = 0;
    while i < 128 {
        let c = BASIC[i] as u32;
        if c < 128 && i != ESC as usize && table[c as usize] == NONE {
            table[c as usize] = i as u8;
        }
        i += 1;
    }
    // Characters of the extension table go through it, as encode_char's search does.
    let mut e = 0;
    while e < EXTENSION.len() {
        let c = EXTENSION[e].1 as u32;
        if c < 128 {
            table[c as usize] = NONE;
        }
        e += 1;
    }
    table
}

fn encode_char(c: char) -> Option<(u8, Option<u8>)> {
    if c.is_ascii() {
        let code = ASCII_TO_GSM[c as usize];
        if code != NONE {
            return Some((code, None));
        }
    }
    // 0x09 decodes to Ç; ç is accepted too because unicode.org's GSM0338.TXT (and
    // tables built from it) map 0x09 to ç, so senders use either.
    if c == 'ç' {
        return Some((0x09, None));
    }
    if let Some(&(code, _)) = EXTENSION.iter().find(|&&(_, e)| e == c) {
        return Some((ESC, Some(code)));
    }
    BASIC
        .iter()
        .position(|&b| b == c)
        .filter(|&i| i != usize::from(ESC))
        .and_then(|i| u8::try_from(i).ok())
        .map(|code| (code, None))
}

fn extension_char(code: u8) -> Option<char> {
    EXTENSION
        .iter()
        .find(|&&(c, _)| c == code)
        .map(|&(_, ch)| ch)
}

/// Decode unpacked septets (one per octet).
///
/// Errors: an octet > 0x7F, a lone ESC at the end, or an ESC pair not in the extension
/// table (23.038 would show the base character, tshark shows U+FFFD; being strict we
/// refuse; [`decode_unpacked_lossy`] gives U+FFFD).
pub fn decode_unpacked(septets: &[u8]) -> Result<String, TextError> {
    decode_impl(septets, Shift::DEFAULT.tables(), false)
}

/// Like [`decode_unpacked`] but never fails: each invalid septet or ESC pair becomes U+FFFD.
pub fn decode_unpacked_lossy(septets: &[u8]) -> String {
    // The lossy path never returns an error.
    decode_impl(septets, Shift::DEFAULT.tables(), true).unwrap_or_default()
}

/// [`decode_unpacked`] with the tables of `shift`. A national locking table leaves
/// some codes undefined: [`TextError::UndefinedSeptet`].
pub fn decode_unpacked_in(septets: &[u8], shift: Shift) -> Result<String, TextError> {
    decode_impl(septets, shift.tables(), false)
}

/// [`decode_unpacked_lossy`] with the tables of `shift`.
pub fn decode_unpacked_lossy_in(septets: &[u8], shift: Shift) -> String {
    decode_impl(septets, shift.tables(), true).unwrap_or_default()
}

fn decode_impl(septets: &[u8], tables: Tables, lossy: bool) -> Result<String, TextError> {
    let mut out = String::with_capacity(septets.len());
    let mut i = 0;
    while i < septets.len() {
        let s = septets[i];
        if s > 0x7F {
            if lossy {
                out.push(char::REPLACEMENT_CHARACTER);
                i += 1;
                continue;
            }
            return Err(TextError::SeptetOutOfRange { value: s, index: i });
        }
        if s == ESC {
            let Some(&code) = septets.get(i + 1) else {
                if lossy {
                    out.push(char::REPLACEMENT_CHARACTER);
                    break;
                }
                return Err(TextError::LoneEscape { index: i });
            };
            match tables.shifted(code) {
                Some(c) => out.push(c),
                None if lossy => out.push(char::REPLACEMENT_CHARACTER),
                None => return Err(TextError::UndefinedExtension { code, index: i }),
            }
            i += 2;
            continue;
        }
        match tables.base(s) {
            Some(c) => out.push(c),
            None if lossy => out.push(char::REPLACEMENT_CHARACTER),
            None => return Err(TextError::UndefinedSeptet { code: s, index: i }),
        }
        i += 1;
    }
    Ok(out)
}

/// Encode text to unpacked septets (one per octet). Extension characters become
/// `ESC code`. The error names the first character with no GSM 03.38 encoding.
pub fn encode_unpacked(text: &str) -> Result<Vec<u8>, TextError> {
    encode_unpacked_in(text, Shift::DEFAULT)
}

/// [`encode_unpacked`] with the tables of `shift`: a character of the locking table
/// takes one septet, one of the single shift table `ESC code`.
pub fn encode_unpacked_in(text: &str, shift: Shift) -> Result<Vec<u8>, TextError> {
    let tables = shift.tables();
    let mut out = Vec::with_capacity(text.len());
    for (index, c) in text.chars().enumerate() {
        let (first, second) = tables.encode(c).ok_or(TextError::Unencodable {
            ch: c,
            index,
            charset: "GSM 03.38",
        })?;
        out.push(first);
        out.extend(second);
    }
    Ok(out)
}

/// What [`encode_unpacked_lossy`] writes for a character GSM 03.38 cannot hold: `?`.
pub const REPLACEMENT: u8 = 0x3F;

/// Like [`encode_unpacked`] but never fails: each character with no GSM 03.38
/// encoding (neither in the default alphabet nor in the extension table) becomes `?`
/// (one septet, 0x3F). Extension characters still become `ESC code`.
pub fn encode_unpacked_lossy(text: &str) -> Vec<u8> {
    encode_unpacked_lossy_in(text, Shift::DEFAULT)
}

/// [`encode_unpacked_lossy`] with the tables of `shift` (`?` is 0x3F in every
/// locking table).
pub fn encode_unpacked_lossy_in(text: &str, shift: Shift) -> Vec<u8> {
    let tables = shift.tables();
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        match tables.encode(c) {
            Some((first, second)) => {
                out.push(first);
                out.extend(second);
            }
            None => out.push(REPLACEMENT),
        }
    }
    out
}

/// Number of septets `text` takes (extension characters count 2); `None` if some
/// character cannot be encoded.
pub fn septet_count(text: &str) -> Option<usize> {
    septet_count_in(text, Shift::DEFAULT)
}

/// [`septet_count`] with the tables of `shift`.
pub fn septet_count_in(text: &str, shift: Shift) -> Option<usize> {
    let tables = shift.tables();
    text.chars().try_fold(0usize, |n, c| {
        tables
            .encode(c)
            .map(|(_, second)| n + 1 + usize::from(second.is_some()))
    })
}

/// Pack septets LSB-first into octets, after `fill_bits` zero bits (0–6, the padding that
/// aligns text after a UDH to a septet boundary; reference §8.7). Only the low 7 bits of
/// each input octet are used. Bits past the last septet in the final octet are zero.
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let total_bits = usize::from(fill_bits) + septets.len() * 7;
    let mut out = vec![0u8; total_bits.div_ceil(8)];
    let mut bit = usize::from(fill_bits);
    for &s in septets {
        let v = u16::from(s & 0x7F) << (bit % 8);
        let idx = bit / 8;
        out[idx] |= (v & 0xFF) as u8;
        if v > 0xFF {
            if let Some(o) = out.get_mut(idx + 1) {
                *o |= (v >> 8) as u8;
            }
        }
        bit += 7;
    }
    out
}

/// Unpack `septet_count` septets from `octets`, skipping `fill_bits` leading bits.
/// The count is needed because a final octet with 7 spare bits is indistinguishable
/// from one holding an extra `@` (0x00). If the octets hold fewer septets than asked,
/// only the complete ones are returned.
pub fn unpack(octets: &[u8], fill_bits: u8, septet_count: usize) -> Vec<u8> {
    let available = (octets.len() * 8).saturating_sub(usize::from(fill_bits)) / 7;
    let n = septet_count.min(available);
    let mut out = Vec::with_capacity(n);
    let mut bit = usize::from(fill_bits);
    for _ in 0..n {
        let idx = bit / 8;
        let lo = u16::from(octets[idx]);
        let hi = u16::from(octets.get(idx + 1).copied().unwrap_or(0));
        let v = ((hi << 8) | lo) >> (bit % 8);
        out.push((v & 0x7F) as u8);
        bit += 7;
    }
    out
}

/// Fill bits needed after a UDH of `udh_len` octets (UDHL + 1) so that the text starts
/// on a septet boundary: `(7 − (udh_len·8 mod 7)) mod 7`.
pub fn fill_bits_after_udh(udh_len: usize) -> u8 {
    ((7 - (udh_len * 8) % 7) % 7) as u8
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_ascii_fast_path_agrees_with_the_tables() {
        for b in 0u8..128 {
            let c = char::from(b);
            let searched = if let Some(&(code, _)) = EXTENSION.iter().find(|&&(_, e)| e == c) {
                Some((ESC, Some(code)))
            } else {
                BASIC
                    .iter()
                    .position(|&x| x == c)
                    .filter(|&i| i != usize::from(ESC))
                    .map(|i| (i as u8, None))
            };
            assert_eq!(encode_char(c), searched, "{c:?}");
        }
    }

    use super::*;

    #[test]
    fn every_basic_char_is_distinct_so_encoding_is_unambiguous() {
        for (i, a) in BASIC.iter().enumerate() {
            assert!(!BASIC[i + 1..].contains(a), "{a:?} twice");
            assert!(
                EXTENSION.iter().all(|&(_, e)| e != *a),
                "{a:?} in both tables"
            );
        }
    }

    #[test]
    fn fill_bits_match_the_reference_formula() {
        assert_eq!(fill_bits_after_udh(6), 1);
        assert_eq!(fill_bits_after_udh(7), 0);
        assert_eq!(fill_bits_after_udh(1), 6);
    }
}
