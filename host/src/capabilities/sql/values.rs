//! The contract's `value` on the wire: a parameter binds to whatever type
//! the server gave its placeholder (an integer to int2, int4 or int8, text
//! also to json and jsonb), and a column of a supported type becomes a
//! value. Anything else is refused with both types named, never guessed.

use std::error::Error;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use crate::contract::bindings::storage::warden::plugin::sql::Value;

type BoxError = Box<dyn Error + Sync + Send>;

/// A plugin's parameter, bound to the type the statement gives it.
#[derive(Debug)]
pub struct Param<'a>(pub &'a Value);

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self.0, ty) {
            (Value::Null, _) => Ok(IsNull::Yes),
            (Value::Boolean(b), &Type::BOOL) => b.to_sql(ty, out),
            (Value::Integer(i), &Type::INT2) => narrow::<i16>(*i, ty)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT4) => narrow::<i32>(*i, ty)?.to_sql(ty, out),
            (Value::Integer(i), &Type::INT8) => i.to_sql(ty, out),
            (Value::Float(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (Value::Float(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (Value::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::NAME | &Type::UNKNOWN) => {
                s.as_str().to_sql(ty, out)
            }
            (Value::Text(s) | Value::Json(s), &Type::JSON) => {
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Text(s) | Value::Json(s), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            (Value::Bytes(b), &Type::BYTEA) => b.as_slice().to_sql(ty, out),
            (value, ty) => Err(format!(
                "a {} value does not fit a parameter of type {ty}: pass another value or cast the placeholder",
                kind(value)
            )
            .into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn narrow<T: TryFrom<i64>>(value: i64, ty: &Type) -> Result<T, BoxError> {
    T::try_from(value).map_err(|_| format!("{value} is out of range for type {ty}").into())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Integer(_) => "integer",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Json(_) => "json",
    }
}

/// One column of a returned row.
pub struct Column(pub Value);

/// A column's size as received, read without decoding it.
pub struct RawLength(pub usize);

impl<'a> FromSql<'a> for RawLength {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(RawLength(raw.len()))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(RawLength(0))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl<'a> FromSql<'a> for Column {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let value = match *ty {
            Type::BOOL => Value::Boolean(bool::from_sql(ty, raw)?),
            Type::INT2 => Value::Integer(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => Value::Integer(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => Value::Integer(i64::from_sql(ty, raw)?),
            Type::OID => Value::Integer(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => Value::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => Value::Float(f64::from_sql(ty, raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Value::Text(String::from_sql(ty, raw)?)
            }
            Type::BYTEA => Value::Bytes(raw.to_vec()),
            Type::JSON => Value::Json(String::from_utf8(raw.to_vec())?),
            Type::JSONB => match raw.split_first() {
                Some((1, json)) => Value::Json(String::from_utf8(json.to_vec())?),
                _ => return Err("a jsonb value in an unknown binary version".into()),
            },
            _ => {
                return Err(format!(
                    "columns of type {ty} are not supported: cast it in the statement (`::text`)"
                )
                .into());
            }
        };
        Ok(Column(value))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Column(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}
