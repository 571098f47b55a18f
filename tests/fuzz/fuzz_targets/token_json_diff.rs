//! The token-response parse, differentially against serde_json.
//!
//! Input: a mode byte, a status/key-table byte, then either raw bytes (mode
//! even) or bytes that drive a generator of JSON texts rich in escapes,
//! surrogate pairs, duplicate and aliased member names, odd numbers, nesting
//! and whitespace (mode odd).
//!
//! Wherever serde_json (with `arbitrary_precision`, so numbers keep their
//! text) accepts the body, fieldauth's answer must follow from serde's
//! reading and the rules documented in `core/src/body.rs` and
//! docs/ARCHITECTURE.md:
//! - every text member fieldauth returns equals serde's decoded string
//!   (escapes, `\u` surrogate pairs), every number serde's value;
//! - a successful parse breaks no rule (duplicates of a member fieldauth
//!   reads, wrong types of strict members, numbers out of range, tokens
//!   that are empty or not VSCHAR, a token type other than Bearer);
//! - every error is one of the rules the body breaks, or a documented
//!   limit: nesting deeper than 32 (`TooDeep`), a top level that is not an
//!   object, storage. Any other error on a body serde accepts (a syntax,
//!   escape or UTF-8 error) is an undocumented difference: a finding.
//!
//! In the other direction, a body serde_json rejects must not be read as a
//! JSON success by fieldauth unless serde's reason is one of its own
//! limits (none apply with the settings used here, so any is a finding).
#![no_main]

use std::collections::BTreeMap;

use fieldauth::body::{
    parse_body, ErrorBody, Expect, KeyTable, Response, PATCHWORKS_KEYS, STANDARD_KEYS,
};
use fieldauth::{Error, JsonError, Member, ResponseError, MAX_LIFETIME_SECS};
use fieldauth_fuzz::{dump, Members};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NUMERIC: [Member; 4] = [
    Member::ExpiresIn,
    Member::RefreshExpiresIn,
    Member::Interval,
    Member::Status,
];
const LENIENT: [Member; 5] = [
    Member::Scope,
    Member::ErrorDescription,
    Member::ErrorUri,
    Member::Status,
    Member::Message,
];

fn num_range(m: Member) -> (u64, u64) {
    match m {
        Member::ExpiresIn => (1, MAX_LIFETIME_SECS),
        Member::Interval => (0, 86_400),
        Member::Status => (0, 999),
        _ => (0, MAX_LIFETIME_SECS),
    }
}

/// What the documented rules make of one member's value.
#[derive(Clone, Debug, PartialEq)]
enum Read {
    Absent,
    Text(String),
    Num(u32),
}

/// The reading of a numeric member: `Err` for InvalidNumber / WrongType.
fn read_num(m: Member, v: &Value) -> Result<Read, ResponseError> {
    let lenient = LENIENT.contains(&m);
    let (min, max) = num_range(m);
    let ok_or = |r: Option<u64>, e: ResponseError| match r {
        Some(0) if m == Member::RefreshExpiresIn => Ok(Read::Absent),
        Some(v) if (min..=max).contains(&v) => Ok(Read::Num(v as u32)),
        _ if lenient => Ok(Read::Absent),
        _ => Err(e),
    };
    match v {
        Value::Null => Ok(Read::Absent),
        Value::Number(n) => {
            // Integer syntax: no fraction, no exponent; "-0" is zero.
            let text = n.to_string();
            let (neg, digits) = match text.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, text.as_str()),
            };
            let value = if digits.bytes().all(|b| b.is_ascii_digit()) {
                digits
                    .parse::<u64>()
                    .ok()
                    .filter(|&v| v <= u64::from(u32::MAX) && (!neg || v == 0))
            } else {
                None
            };
            ok_or(value, ResponseError::InvalidNumber(m))
        }
        Value::String(s) => {
            let value = if !s.is_empty() && s.len() < 19 && s.bytes().all(|b| b.is_ascii_digit()) {
                Some(s.parse::<u64>().unwrap().min(u64::from(u32::MAX)))
            } else {
                None
            };
            ok_or(value, ResponseError::InvalidNumber(m))
        }
        _ if lenient => Ok(Read::Absent),
        _ => Err(ResponseError::WrongType(m)),
    }
}

fn read_text(m: Member, v: &Value) -> Result<Read, ResponseError> {
    match v {
        Value::Null => Ok(Read::Absent),
        Value::String(s) => Ok(Read::Text(s.clone())),
        _ if LENIENT.contains(&m) => Ok(Read::Absent),
        _ => Err(ResponseError::WrongType(m)),
    }
}

/// Depth of nesting of a valid JSON text (the top-level object is 1),
/// counted on the text: serde's maps keep one copy of a duplicated key, so
/// its values may not show the deepest one.
fn depth(text: &[u8]) -> usize {
    let (mut d, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
    for &b in text {
        if in_str {
            match (esc, b) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'[' | b'{' => {
                d += 1;
                max = max.max(d);
            }
            b']' | b'}' => d = d.saturating_sub(1),
            _ => {}
        }
    }
    max
}

struct Expected {
    /// Rules the body breaks (any one of them may be the error).
    violations: Vec<ResponseError>,
    reads: BTreeMap<u8, Read>,
    error_member: bool,
}

fn expected(members: &[(String, Value)], keys: KeyTable) -> Expected {
    let mut violations = Vec::new();
    let mut reads = BTreeMap::new();
    let mut seen = BTreeMap::new();
    for (k, v) in members {
        let Some(&(_, m)) = keys.iter().find(|(name, _)| *name == k.as_bytes()) else {
            continue;
        };
        if seen.insert(m as u8, ()).is_some() {
            violations.push(ResponseError::DuplicateMember(m));
            continue;
        }
        let r = if NUMERIC.contains(&m) {
            read_num(m, v)
        } else {
            read_text(m, v)
        };
        match r {
            Ok(r) => {
                reads.insert(m as u8, r);
            }
            Err(e) => violations.push(e),
        }
    }
    let error_member = matches!(reads.get(&(Member::Error as u8)), Some(Read::Text(_)));
    Expected {
        violations,
        reads,
        error_member,
    }
}

fn text<'a>(e: &'a Expected, m: Member) -> Option<&'a str> {
    match e.reads.get(&(m as u8)) {
        Some(Read::Text(s)) => Some(s),
        _ => None,
    }
}

fn num(e: &Expected, m: Member) -> Option<u32> {
    match e.reads.get(&(m as u8)) {
        Some(Read::Num(n)) => Some(*n),
        _ => None,
    }
}

/// The token rules checked after the scan (RFC 6749 §5.1, Appendix A).
fn token_violations(e: &Expected, out: &mut Vec<ResponseError>) {
    let vschar = |s: &str| s.bytes().all(|b| (0x20..=0x7e).contains(&b));
    match text(e, Member::AccessToken) {
        None | Some("") => out.push(ResponseError::MissingMember(Member::AccessToken)),
        Some(t) if !vschar(t) => out.push(ResponseError::InvalidCharacters(Member::AccessToken)),
        _ => {}
    }
    match text(e, Member::RefreshToken) {
        Some("") => out.push(ResponseError::MissingMember(Member::RefreshToken)),
        Some(t) if !vschar(t) => out.push(ResponseError::InvalidCharacters(Member::RefreshToken)),
        _ => {}
    }
    if let Some(tt) = text(e, Member::TokenType) {
        if !tt.eq_ignore_ascii_case("bearer") {
            out.push(ResponseError::UnsupportedTokenType);
        }
    }
}

/// Is `err` explained by the body (a rule it breaks, or a documented limit)?
fn justified(
    err: &Error,
    top_is_object: bool,
    max_depth: usize,
    rules: &[ResponseError],
    text_len: usize,
) -> bool {
    match err {
        Error::Json {
            kind: JsonError::TooDeep,
            ..
        } => max_depth > 32,
        Error::Json {
            kind: JsonError::NotAnObject,
            ..
        }
        | Error::Response(ResponseError::NotJson) => !top_is_object,
        Error::Response(r) => rules.contains(r),
        Error::CapacityExceeded { .. } => text_len > usize::from(u16::MAX),
        _ => false,
    }
}

fn check(body: &[u8], status: u16, keys: KeyTable) {
    let mut storage = vec![0u8; 70_000];
    let got = parse_body(Expect::Token, status, keys, body, &mut storage);
    let got_view = got.as_ref().map(|p| p.view(&storage));
    let show = || {
        format!(
            "\n  body: {:?}\n  status {status}\n  fieldauth: {}",
            String::from_utf8_lossy(body),
            match &got_view {
                Ok(v) => dump(v),
                Err(e) => format!("{e:?}"),
            }
        )
    };

    // A leading UTF-8 BOM is skipped (docs/ARCHITECTURE.md, "The JSON
    // scanner"); serde_json refuses one: compare without it.
    let json = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let value: Value = match serde_json::from_slice(json) {
        Ok(v) => v,
        Err(e) => {
            // serde_json rejects it: fieldauth must not read it as JSON.
            if let Ok(v) = &got_view {
                let json_read = match v {
                    Response::Error(er) => er.body == ErrorBody::Json,
                    Response::Revoked => false,
                    _ => true,
                };
                assert!(
                    !json_read,
                    "serde_json rejects ({e}), fieldauth reads it as JSON{}",
                    show()
                );
            }
            return;
        }
    };
    let top_is_object = value.is_object();
    let max_depth = depth(json);
    let members = if top_is_object {
        serde_json::from_slice::<Members>(json)
            .expect("an object")
            .0
    } else {
        Vec::new()
    };
    let exp = expected(&members, keys);
    let text_len: usize = exp
        .reads
        .values()
        .map(|r| if let Read::Text(s) = r { s.len() } else { 0 })
        .sum();
    let success = (200..=299).contains(&status);
    let mut rules = exp.violations.clone();
    let scan_ok = rules.is_empty() && top_is_object && max_depth <= 32;
    if scan_ok && success && !exp.error_member {
        token_violations(&exp, &mut rules);
    }
    if scan_ok && !success && !(400..=599).contains(&status) && !exp.error_member {
        rules.push(ResponseError::UnexpectedStatus);
    }

    let view = match got_view {
        Err(e) => {
            assert!(
                justified(&e, top_is_object, max_depth, &rules, text_len),
                "fieldauth's error is not explained by the body (serde_json accepts it; rules broken: {rules:?}){}",
                show()
            );
            return;
        }
        Ok(v) => v,
    };
    match view {
        Response::Token(t) => {
            assert!(
                scan_ok && rules.is_empty(),
                "accepted a body that breaks {rules:?}{}",
                show()
            );
            assert_eq!(
                Some(t.access_token),
                text(&exp, Member::AccessToken),
                "access_token{}",
                show()
            );
            assert_eq!(
                t.token_type,
                text(&exp, Member::TokenType),
                "token_type{}",
                show()
            );
            assert_eq!(
                t.refresh_token,
                text(&exp, Member::RefreshToken),
                "refresh_token{}",
                show()
            );
            assert_eq!(t.scope, text(&exp, Member::Scope), "scope{}", show());
            assert_eq!(t.message, text(&exp, Member::Message), "message{}", show());
            assert_eq!(
                t.expires_in,
                num(&exp, Member::ExpiresIn),
                "expires_in{}",
                show()
            );
            assert_eq!(
                t.refresh_expires_in,
                num(&exp, Member::RefreshExpiresIn),
                "refresh_expires_in{}",
                show()
            );
        }
        Response::Error(er) => match er.body {
            ErrorBody::Json => {
                assert!(
                    scan_ok && rules.is_empty(),
                    "error response read from a body that breaks {rules:?}{}",
                    show()
                );
                assert!(
                    !success || exp.error_member,
                    "a 2xx without an error member read as an error{}",
                    show()
                );
                assert_eq!(er.error, text(&exp, Member::Error), "error{}", show());
                assert_eq!(
                    er.description,
                    text(&exp, Member::ErrorDescription),
                    "error_description{}",
                    show()
                );
                assert_eq!(er.uri, text(&exp, Member::ErrorUri), "error_uri{}", show());
                assert_eq!(er.message, text(&exp, Member::Message), "message{}", show());
                assert_eq!(
                    er.status_member.map(u32::from),
                    num(&exp, Member::Status),
                    "status member{}",
                    show()
                );
            }
            ErrorBody::Malformed(e) => {
                assert!(!success);
                assert!(
                    justified(&e, top_is_object, max_depth, &rules, text_len),
                    "malformed for no documented reason: {e:?}{}",
                    show()
                );
            }
            ErrorBody::Empty | ErrorBody::NotJson => {
                assert!(!success);
                assert!(!top_is_object, "a JSON object called not JSON{}", show());
            }
        },
        other => panic!("unexpected response kind {}{}", dump(&other), show()),
    }
}

// ------------------------------------------------------------ the generator

const NAMES: [&str; 22] = [
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "error",
    "error_description",
    "error_uri",
    "refresh_token_expires_in",
    "refresh_expires_in",
    "status",
    "message",
    "token",
    "device_code",
    "user_code",
    "verification_uri",
    "interval",
    "Access_Token",
    "access_token ",
    "id_token",
    "",
    "x",
];

/// A character to put in a string: mostly printable ASCII, with the
/// characters that must or may be escaped, non-ASCII and astral ones.
fn gen_char(u: &mut Unstructured<'_>) -> AResult<char> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=4 => char::from(u.int_in_range(0x20..=0x7eu8)?),
        5 => *u.choose(&[
            '"', '\\', '/', '\n', '\r', '\t', '\u{8}', '\u{c}', '\0', '\u{1f}', '\u{7f}',
        ])?,
        6 => *u.choose(&[
            'é', 'ß', '€', '\u{80}', '\u{7ff}', '\u{800}', '\u{fffd}', '\u{ffff}', '\u{d7ff}',
            '\u{e000}',
        ])?,
        7 => *u.choose(&['😀', '\u{10000}', '\u{10ffff}', '𝄞'])?,
        _ => u.arbitrary::<char>()?,
    })
}

fn gen_string(u: &mut Unstructured<'_>, s: &str, out: &mut String) -> AResult<()> {
    out.push('"');
    for c in s.chars() {
        push_char(u, c, out)?;
    }
    out.push('"');
    Ok(())
}

fn push_char(u: &mut Unstructured<'_>, c: char, out: &mut String) -> AResult<()> {
    let must = c < ' ' || c == '"' || c == '\\';
    let how = u.int_in_range(0..=5u8)?;
    let short = match c {
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '/' => Some("\\/"),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        '\u{8}' => Some("\\b"),
        '\u{c}' => Some("\\f"),
        _ => None,
    };
    let upper = u.arbitrary::<bool>()?;
    let hex = |v: u32| {
        if upper {
            format!("\\u{v:04X}")
        } else {
            format!("\\u{v:04x}")
        }
    };
    match (how, short) {
        (0 | 1, Some(s)) => out.push_str(s),
        (0..=2, _) if !must => out.push(c),
        _ => {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&hex(u32::from(*unit)));
            }
        }
    }
    Ok(())
}

fn ws(u: &mut Unstructured<'_>, out: &mut String) -> AResult<()> {
    if u.ratio(1, 4)? {
        for _ in 0..u.int_in_range(1..=3u8)? {
            out.push(*u.choose(&[' ', '\t', '\n', '\r'])?);
        }
    }
    Ok(())
}

fn gen_number(u: &mut Unstructured<'_>, out: &mut String) -> AResult<()> {
    let pick = u.int_in_range(0..=9u8)?;
    let s = match pick {
        0 => "0".to_string(),
        1 => "-0".to_string(),
        2 => u.int_in_range(1..=100_000u32)?.to_string(),
        3 => u.arbitrary::<u64>()?.to_string(),
        4 => format!("-{}", u.int_in_range(1..=5000u32)?),
        5 => format!(
            "{}.{}",
            u.int_in_range(0..=5000u32)?,
            u.int_in_range(0..=99u32)?
        ),
        6 => format!(
            "{}e{}",
            u.int_in_range(0..=50u32)?,
            u.int_in_range(0..=3u32)?
        ),
        7 => format!(
            "{}E-{}",
            u.int_in_range(1..=9u32)?,
            u.int_in_range(0..=400u32)?
        ),
        8 => "315360000".to_string(),
        _ => "315360001".to_string(),
    };
    out.push_str(&s);
    Ok(())
}

fn gen_value(u: &mut Unstructured<'_>, depth: u32, out: &mut String) -> AResult<()> {
    ws(u, out)?;
    match u.int_in_range(0..=9u8)? {
        0..=3 => {
            let len = u.int_in_range(0..=24usize)?;
            let mut s = String::new();
            if u.ratio(1, 3)? {
                s.push_str(*u.choose(&[
                    "Bearer", "bearer", "BEARER", "mac", "3600", "86400", "0", "000123", "",
                ])?);
            } else {
                for _ in 0..len {
                    s.push(gen_char(u)?);
                }
            }
            gen_string(u, &s, out)?;
        }
        4 | 5 => gen_number(u, out)?,
        6 => out.push_str(*u.choose(&["true", "false", "null"])?),
        7 if depth < 40 => {
            out.push('[');
            let n = u.int_in_range(0..=3u8)?;
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                gen_value(u, depth + 1, out)?;
            }
            ws(u, out)?;
            out.push(']');
        }
        8 if depth < 40 => gen_object(u, depth + 1, out)?,
        _ => out.push_str("null"),
    }
    ws(u, out)
}

fn gen_object(u: &mut Unstructured<'_>, depth: u32, out: &mut String) -> AResult<()> {
    out.push('{');
    let n = u.int_in_range(0..=8u8)?;
    for i in 0..n {
        if i > 0 {
            out.push(',');
        }
        ws(u, out)?;
        let name = if u.ratio(7, 8)? {
            (*u.choose(&NAMES)?).to_string()
        } else {
            let mut s = String::new();
            for _ in 0..u.int_in_range(0..=40usize)? {
                s.push(gen_char(u)?);
            }
            s
        };
        gen_string(u, &name, out)?;
        ws(u, out)?;
        out.push(':');
        gen_value(u, depth, out)?;
    }
    ws(u, out)?;
    out.push('}');
    Ok(())
}

fn generate(data: &[u8]) -> String {
    let mut u = Unstructured::new(data);
    let mut out = String::new();
    let _ = ws(&mut u, &mut out);
    let _ = gen_object(&mut u, 1, &mut out);
    let _ = ws(&mut u, &mut out);
    out
}

fuzz_target!(|data: &[u8]| {
    let [mode, sel, rest @ ..] = data else {
        return;
    };
    let status = [200, 201, 400, 401, 302][usize::from(sel % 5)];
    let keys = if sel & 0x80 == 0 {
        STANDARD_KEYS
    } else {
        PATCHWORKS_KEYS
    };
    if mode & 1 == 0 {
        check(rest, status, keys);
    } else {
        let text = generate(rest);
        check(text.as_bytes(), status, keys);
    }
});
