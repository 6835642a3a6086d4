//! The `sql` host interface as the operations use it: one statement in a
//! read-committed transaction of its own (a read is rolled back, a write
//! committed), parameters that must fit PostgreSQL's types, and the cells
//! of a row read back, decoded without trusting them.

use warden_plugin::storage::PluginError;
use warden_plugin::storage::sql::{self, Isolation, Transaction, Value};

use crate::error::Error;

/// Begin a read-committed transaction: each statement sees what was committed before it.
pub(crate) fn begin() -> Result<Transaction, Error> {
    Ok(sql::begin(Isolation::ReadCommitted)?)
}

/// Run one query and keep its rows. The transaction is dropped, not
/// committed: a read has nothing to commit, and the host rolls it back
/// without the call waiting for it.
pub(crate) fn read(statement: &str, params: &[Value]) -> Result<Vec<Vec<Value>>, Error> {
    let transaction = begin()?;
    Ok(transaction.query(statement, params)?.rows)
}

/// The first row of a query, if it returned one.
pub(crate) fn first_row(statement: &str, params: &[Value]) -> Result<Option<Cells>, Error> {
    Ok(read(statement, params)?.into_iter().next().map(Cells::new))
}

/// Run one statement and commit it; returns how many rows it changed.
pub(crate) fn write(statement: &str, params: &[Value]) -> Result<u64, Error> {
    let transaction = begin()?;
    let changed = transaction.execute(statement, params)?;
    Transaction::commit(transaction)?;
    Ok(changed)
}

/// `value` as a bigint parameter; `invalid` past what a bigint holds.
pub(crate) fn bigint(what: &str, value: u64) -> Result<Value, PluginError> {
    i64::try_from(value).map(Value::Integer).map_err(|_| {
        PluginError::Invalid(format!("{what} {value} is larger than this store holds ({})", i64::MAX))
    })
}

/// Whether PostgreSQL's `text` can hold `value` (it cannot hold NUL).
pub(crate) fn storable(value: &str) -> bool {
    !value.contains('\0')
}

/// The cells of one row, taken in column order; each error names the column.
pub(crate) struct Cells(std::vec::IntoIter<Value>);

impl Cells {
    pub(crate) fn new(row: Vec<Value>) -> Self {
        Self(row.into_iter())
    }

    fn next(&mut self, column: &str) -> Result<Value, String> {
        self.0.next().ok_or_else(|| format!("the row has no {column} column"))
    }

    pub(crate) fn text(&mut self, column: &str) -> Result<String, String> {
        match self.next(column)? {
            Value::Text(text) => Ok(text),
            other => Err(format!("{column} is {}, not text", kind(&other))),
        }
    }

    pub(crate) fn optional_text(&mut self, column: &str) -> Result<Option<String>, String> {
        match self.next(column)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text)),
            other => Err(format!("{column} is {}, not text", kind(&other))),
        }
    }

    pub(crate) fn unsigned(&mut self, column: &str) -> Result<u64, String> {
        match self.next(column)? {
            Value::Integer(n) => u64::try_from(n).map_err(|_| format!("{column} is negative ({n})")),
            other => Err(format!("{column} is {}, not an integer", kind(&other))),
        }
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Json(_) => "JSON",
    }
}
