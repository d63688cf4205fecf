//! Field parsers shared by every PDU (rusticata style: small free functions over
//! `&[u8]`, each naming the spec field it reads so errors can say which failed).
//!
//! Every parser takes `body`, the `Bytes` the input slice was cut from, so that
//! strings and octet strings are returned as zero-copy `Bytes` slices of it.

use bytes::Bytes;
use nom::number::complete::{be_u32, be_u8};

use crate::command_status::CommandStatus;
use crate::cstring::COctetString;
use crate::error::{cstring_status, ErrorKind, PduError};

/// Like nom's `IResult`, but with our error directly: SMPP parsing never
/// backtracks, so every error is final and `?` works without `nom::Err` wrapping.
pub(crate) type PResult<'a, T> = Result<(&'a [u8], T), PduError>;

#[inline]
pub(crate) fn fail<'a, T>(
    status: CommandStatus,
    field: &'static str,
    kind: ErrorKind,
) -> PResult<'a, T> {
    Err(PduError::new(status, field, kind))
}

// Needed so nom's number parsers can run with our error type; the generic error
// is immediately replaced with one that names the field (see `int`).
impl<'a> nom::error::ParseError<&'a [u8]> for PduError {
    fn from_error_kind(_: &'a [u8], _: nom::error::ErrorKind) -> Self {
        PduError::new(CommandStatus::ESME_RINVCMDLEN, "body", ErrorKind::Truncated)
    }
    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

fn truncated(field: &'static str) -> PduError {
    // A fixed-size field cut short means command_length disagrees with the body.
    PduError::new(CommandStatus::ESME_RINVCMDLEN, field, ErrorKind::Truncated)
}

/// An `I1` field.
#[inline]
pub(crate) fn u8_field<'a>(i: &'a [u8], field: &'static str) -> PResult<'a, u8> {
    be_u8::<_, PduError>(i).map_err(|_| truncated(field))
}

/// An `I4` field.
#[inline]
pub(crate) fn u32_field<'a>(i: &'a [u8], field: &'static str) -> PResult<'a, u32> {
    be_u32::<_, PduError>(i).map_err(|_| truncated(field))
}

/// A C-Octet String of at most `max` octets **including** the NUL.
/// Missing NUL or over-long → the field's conventional status (reference §3.15).
#[inline]
pub(crate) fn cstring<'a>(
    body: &Bytes,
    i: &'a [u8],
    max: usize,
    field: &'static str,
) -> PResult<'a, COctetString> {
    let window = &i[..i.len().min(max)];
    match window.iter().position(|&b| b == 0) {
        Some(n) => Ok((
            &i[n + 1..],
            COctetString::from_bytes_unchecked(body.slice_ref(&i[..n])),
        )),
        None if i.len() >= max => fail(cstring_status(field), field, ErrorKind::TooLong { max }),
        None => fail(cstring_status(field), field, ErrorKind::MissingNul),
    }
}

/// A time field (`T`): NULL or exactly 16 characters (reference §7.1).
#[inline]
pub(crate) fn time_field<'a>(
    body: &Bytes,
    i: &'a [u8],
    field: &'static str,
    status: CommandStatus,
) -> PResult<'a, COctetString> {
    let window = &i[..i.len().min(17)];
    match window.iter().position(|&b| b == 0) {
        Some(0) => Ok((&i[1..], COctetString::empty())),
        Some(16) => Ok((
            &i[17..],
            COctetString::from_bytes_unchecked(body.slice_ref(&i[..16])),
        )),
        Some(n) => fail(status, field, ErrorKind::BadTimeLength { len: n }),
        None if i.len() >= 17 => fail(status, field, ErrorKind::TooLong { max: 17 }),
        None => fail(status, field, ErrorKind::MissingNul),
    }
}

/// Maximum `sm_length` in SMPP v3.4.
pub(crate) const SM_MAX: usize = 254;

/// `sm_length` followed by `short_message` (reference §3.5: over 254 or past the
/// body → ESME_RINVMSGLEN).
#[inline]
pub(crate) fn short_message<'a>(body: &Bytes, i: &'a [u8]) -> PResult<'a, Bytes> {
    let (i, sm_length) = u8_field(i, "sm_length")?;
    let n = usize::from(sm_length);
    if n > SM_MAX || n > i.len() {
        return fail(
            CommandStatus::ESME_RINVMSGLEN,
            "sm_length",
            ErrorKind::BadSmLength { sm_length },
        );
    }
    Ok((&i[n..], body.slice_ref(&i[..n])))
}

/// Fails with ESME_RINVCMDLEN if anything is left (header-only PDUs, fixed bodies).
#[inline]
pub(crate) fn expect_end(i: &[u8], field: &'static str) -> Result<(), PduError> {
    if i.is_empty() {
        Ok(())
    } else {
        Err(PduError::new(
            CommandStatus::ESME_RINVCMDLEN,
            field,
            ErrorKind::TrailingBytes { count: i.len() },
        ))
    }
}
