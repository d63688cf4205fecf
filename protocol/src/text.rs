//! User data → Unicode by `data_coding` (reference §6.3), and back.
//!
//! Our choices for the codings the spec leaves open:
//! * 0x00 "SMSC default alphabet" is GSM 03.38, unpacked (one septet per octet, §8.6),
//!   unless the account says otherwise ([`DefaultAlphabet`], the `_in` functions).
//! * GSM 03.38 text is read with the national language tables its UDH names
//!   ([`crate::udh::shift_of`], [`TextContext::shift`]); without one, the default tables.
//! * 0xF0–0xFF: bit 2 clear → GSM 03.38 unpacked; bit 2 set → 8-bit data (binary).
//! * 0x02, 0x04 (octet unspecified) and everything we do not transcode (0x05 JIS,
//!   0x06 Cyrillic, 0x07 Hebrew, 0x09 pictogram, …, the 0xC0–0xEF message-waiting
//!   groups) → [`DecodedText::Binary`]: the bytes are kept as they are by the caller.
//!
//! The user data given here must not include a UDH (see [`crate::udh::concat_info`]).

use thiserror::Error;

use crate::gsm7;

/// `data_coding` values this module transcodes.
pub const DC_DEFAULT_GSM: u8 = 0x00;
pub const DC_IA5: u8 = 0x01;
pub const DC_LATIN1: u8 = 0x03;
pub const DC_UCS2: u8 = 0x08;

/// A text decoding/encoding fault, naming the offending value and its position.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TextError {
    #[error("character {ch:?} (U+{:04X}) at index {index} cannot be encoded in {charset}", u32::from(*ch))]
    Unencodable {
        ch: char,
        /// Index in chars (not bytes) of the text.
        index: usize,
        charset: &'static str,
    },
    #[error("GSM 03.38: octet 0x{value:02X} at offset {index} is not a septet (> 0x7F)")]
    SeptetOutOfRange { value: u8, index: usize },
    #[error("GSM 03.38: lone escape 0x1B at offset {index} at the end of the text")]
    LoneEscape { index: usize },
    #[error(
        "GSM 03.38: escape sequence 1B {code:02X} at offset {index} is not in the extension table"
    )]
    UndefinedExtension { code: u8, index: usize },
    #[error(
        "GSM 03.38: septet 0x{code:02X} at offset {index} is not in the national locking shift table"
    )]
    UndefinedSeptet { code: u8, index: usize },
    #[error("IA5: octet 0x{value:02X} at offset {index} is not 7-bit ASCII")]
    NotAscii { value: u8, index: usize },
    #[error("UCS2: odd user data length {len}")]
    Ucs2OddLength { len: usize },
    #[error("UCS2: unpaired surrogate 0x{unit:04X} at offset {index}")]
    Ucs2LoneSurrogate { unit: u16, index: usize },
    #[error("data_coding 0x{data_coding:02X} is not a text encoding we can encode")]
    UnsupportedCoding { data_coding: u8 },
}

/// What data_coding 0x00, "SMSC default alphabet", means: a per-account choice, since
/// ESMEs differ (many send plain ASCII and expect it back).
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DefaultAlphabet {
    /// GSM 03.38 unpacked, one septet per octet (§8.6).
    #[default]
    Gsm7,
    /// IA5 / ASCII, as data_coding 0x01.
    Ascii,
    /// ISO-8859-1, as data_coding 0x03.
    Latin1,
}

impl DefaultAlphabet {
    /// The names `config.toml` and the command line use: `gsm7`, `ascii`, `latin1`.
    pub fn parse(name: &str) -> Option<DefaultAlphabet> {
        Some(match name {
            "gsm7" => DefaultAlphabet::Gsm7,
            "ascii" => DefaultAlphabet::Ascii,
            "latin1" => DefaultAlphabet::Latin1,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DefaultAlphabet::Gsm7 => "gsm7",
            DefaultAlphabet::Ascii => "ascii",
            DefaultAlphabet::Latin1 => "latin1",
        }
    }
}

/// How user data becomes text beyond its data_coding: what 0x00 means, and the GSM
/// 7-bit tables in force. The default is GSM 03.38 with the default tables.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TextContext {
    pub default_alphabet: DefaultAlphabet,
    /// Used for GSM 03.38 text only (0x00 when `default_alphabet` is `Gsm7`, 0xF0–0xFF).
    pub shift: gsm7::Shift,
}

impl TextContext {
    /// The context of a short_message / message_payload as received: the tables its
    /// UDH (if any) names, and what 0x00 means for the account.
    pub fn of(default_alphabet: DefaultAlphabet, esm_class: u8, raw_user_data: &[u8]) -> Self {
        TextContext {
            default_alphabet,
            shift: crate::udh::shift_of(esm_class, raw_user_data),
        }
    }
}

/// The decoded user data.
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedText {
    Text(String),
    /// A binary or unsupported coding: keep the raw octets.
    Binary,
}

impl DecodedText {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            DecodedText::Text(s) => Some(s),
            DecodedText::Binary => None,
        }
    }
}

#[derive(Clone, Copy)]
enum Charset {
    Gsm,
    Ia5,
    Latin1,
    Ucs2,
    Binary,
}

fn charset(data_coding: u8, default_alphabet: DefaultAlphabet) -> Charset {
    match data_coding {
        DC_DEFAULT_GSM => match default_alphabet {
            DefaultAlphabet::Gsm7 => Charset::Gsm,
            DefaultAlphabet::Ascii => Charset::Ia5,
            DefaultAlphabet::Latin1 => Charset::Latin1,
        },
        DC_IA5 => Charset::Ia5,
        DC_LATIN1 => Charset::Latin1,
        DC_UCS2 => Charset::Ucs2,
        0xF0..=0xFF if data_coding & 0x04 == 0 => Charset::Gsm,
        _ => Charset::Binary,
    }
}

/// Decode user data (without UDH) to text, strictly: any invalid unit is an error.
///
/// UCS2 is read as UTF-16BE, so a surrogate pair is one character. A pair split across
/// two segments fails here per segment (lone surrogate) but decodes once the segments'
/// user data are joined; use [`decode_user_data_lossy`] for a single segment.
pub fn decode_user_data(data_coding: u8, user_data: &[u8]) -> Result<DecodedText, TextError> {
    decode_user_data_in(data_coding, user_data, TextContext::default())
}

/// [`decode_user_data`] in a [`TextContext`].
pub fn decode_user_data_in(
    data_coding: u8,
    user_data: &[u8],
    ctx: TextContext,
) -> Result<DecodedText, TextError> {
    let text = match charset(data_coding, ctx.default_alphabet) {
        Charset::Gsm => gsm7::decode_unpacked_in(user_data, ctx.shift)?,
        Charset::Ia5 => {
            if let Some(index) = user_data.iter().position(|b| !b.is_ascii()) {
                return Err(TextError::NotAscii {
                    value: user_data[index],
                    index,
                });
            }
            user_data.iter().map(|&b| char::from(b)).collect()
        }
        Charset::Latin1 => user_data.iter().map(|&b| char::from(b)).collect(),
        Charset::Ucs2 => decode_ucs2(user_data)?,
        Charset::Binary => return Ok(DecodedText::Binary),
    };
    Ok(DecodedText::Text(text))
}

/// Like [`decode_user_data`] but never fails: each invalid unit (septet > 0x7F, undefined
/// or lone escape, non-ASCII IA5 octet, lone surrogate, odd trailing UCS2 octet) becomes
/// U+FFFD.
pub fn decode_user_data_lossy(data_coding: u8, user_data: &[u8]) -> DecodedText {
    decode_user_data_lossy_in(data_coding, user_data, TextContext::default())
}

/// [`decode_user_data_lossy`] in a [`TextContext`].
pub fn decode_user_data_lossy_in(
    data_coding: u8,
    user_data: &[u8],
    ctx: TextContext,
) -> DecodedText {
    let text = match charset(data_coding, ctx.default_alphabet) {
        Charset::Gsm => gsm7::decode_unpacked_lossy_in(user_data, ctx.shift),
        Charset::Ia5 => user_data
            .iter()
            .map(|&b| {
                if b.is_ascii() {
                    char::from(b)
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            })
            .collect(),
        Charset::Latin1 => user_data.iter().map(|&b| char::from(b)).collect(),
        Charset::Ucs2 => {
            let mut s: String = char::decode_utf16(ucs2_units(user_data))
                .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            if user_data.len() % 2 == 1 {
                s.push(char::REPLACEMENT_CHARACTER);
            }
            s
        }
        Charset::Binary => return DecodedText::Binary,
    };
    DecodedText::Text(text)
}

fn ucs2_units(data: &[u8]) -> impl Iterator<Item = u16> + '_ {
    data.chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
}

fn decode_ucs2(data: &[u8]) -> Result<String, TextError> {
    if data.len() % 2 == 1 {
        return Err(TextError::Ucs2OddLength { len: data.len() });
    }
    let mut out = String::with_capacity(data.len() / 2);
    let mut offset = 0;
    for r in char::decode_utf16(ucs2_units(data)) {
        match r {
            Ok(c) => {
                out.push(c);
                offset += c.len_utf16() * 2;
            }
            Err(e) => {
                return Err(TextError::Ucs2LoneSurrogate {
                    unit: e.unpaired_surrogate(),
                    index: offset,
                })
            }
        }
    }
    Ok(out)
}

/// Encode text for `data_coding` 0x00 (GSM 03.38 unpacked), 0x01 (IA5/ASCII),
/// 0x03 (Latin-1), 0x08 (UCS2 as UTF-16BE, surrogate pairs for non-BMP) and the GSM
/// 7-bit message-class codings 0xF0–0xF3 / 0xF8–0xFB. Any other coding →
/// [`TextError::UnsupportedCoding`]. The error names the first unencodable character.
pub fn encode_text(data_coding: u8, text: &str) -> Result<Vec<u8>, TextError> {
    encode_text_in(data_coding, text, TextContext::default())
}

/// [`encode_text`] in a [`TextContext`].
pub fn encode_text_in(data_coding: u8, text: &str, ctx: TextContext) -> Result<Vec<u8>, TextError> {
    match charset(data_coding, ctx.default_alphabet) {
        Charset::Gsm => gsm7::encode_unpacked_in(text, ctx.shift),
        Charset::Ia5 => encode_single_byte(text, 0x7F, "IA5"),
        Charset::Latin1 => encode_single_byte(text, 0xFF, "Latin-1"),
        Charset::Ucs2 => Ok(text.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        Charset::Binary => Err(TextError::UnsupportedCoding { data_coding }),
    }
}

/// Like [`encode_text`] but never fails on a character: each one the coding cannot hold
/// becomes `?` (GSM 03.38 septet 0x3F, ASCII / Latin-1 0x3F; UCS2 holds every
/// character). Only a coding we do not encode ([`TextError::UnsupportedCoding`]) fails.
pub fn encode_text_lossy(data_coding: u8, text: &str) -> Result<Vec<u8>, TextError> {
    encode_text_lossy_in(data_coding, text, TextContext::default())
}

/// [`encode_text_lossy`] in a [`TextContext`].
pub fn encode_text_lossy_in(
    data_coding: u8,
    text: &str,
    ctx: TextContext,
) -> Result<Vec<u8>, TextError> {
    match charset(data_coding, ctx.default_alphabet) {
        Charset::Gsm => Ok(gsm7::encode_unpacked_lossy_in(text, ctx.shift)),
        Charset::Ia5 => Ok(encode_single_byte_lossy(text, 0x7F)),
        Charset::Latin1 => Ok(encode_single_byte_lossy(text, 0xFF)),
        Charset::Ucs2 => Ok(text.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        Charset::Binary => Err(TextError::UnsupportedCoding { data_coding }),
    }
}

fn encode_single_byte_lossy(text: &str, max: u32) -> Vec<u8> {
    text.chars()
        .map(|ch| {
            u8::try_from(u32::from(ch))
                .ok()
                .filter(|&b| u32::from(b) <= max)
                .unwrap_or(b'?')
        })
        .collect()
}

fn encode_single_byte(text: &str, max: u32, charset: &'static str) -> Result<Vec<u8>, TextError> {
    text.chars()
        .enumerate()
        .map(|(index, ch)| {
            u8::try_from(u32::from(ch))
                .ok()
                .filter(|&b| u32::from(b) <= max)
                .ok_or(TextError::Unencodable { ch, index, charset })
        })
        .collect()
}
