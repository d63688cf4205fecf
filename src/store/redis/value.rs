//! Reading the arrays the Lua scripts return.

use redis::Value;

use crate::store::error::StoreError;

pub fn items(v: Value) -> Vec<Value> {
    match v {
        Value::Array(a) | Value::Set(a) => a,
        _ => Vec::new(),
    }
}

pub fn string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        other => string(other).and_then(|s| s.parse().ok()),
    }
}

/// Element `i` as a string, or a `Corrupt` error naming `what`.
pub fn str_at(a: &[Value], i: usize, what: &str) -> Result<String, StoreError> {
    a.get(i)
        .and_then(string)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: element {i} missing")))
}

pub fn int_at(a: &[Value], i: usize, what: &str) -> Result<i64, StoreError> {
    a.get(i)
        .and_then(int)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: element {i} missing")))
}

/// A flat `HGETALL` reply as a map with the values as sent: segment records carry
/// binary user data.
pub fn hash_bytes(v: Value) -> std::collections::HashMap<String, Vec<u8>> {
    let a = items(v);
    a.chunks(2)
        .filter_map(|kv| {
            let value = match kv.get(1)? {
                Value::BulkString(b) => b.clone(),
                other => string(other)?.into_bytes(),
            };
            Some((string(kv.first()?)?, value))
        })
        .collect()
}
