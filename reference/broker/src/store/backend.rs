//! What differs between the two databases, behind a small trait: the pools
//! (one writer, readers beside it) and the dialect's clauses. The store's
//! queries (`sql/`) are written once against [`Backend`].
//!
//! Parameters go in as [`Value`]s and rows come back as [`Rows`] of
//! [`Cell`]s, so the generic code carries none of sqlx's higher-ranked
//! per-database bounds; each backend converts in one place. Rows are then
//! decoded into typed values once, by [`RowRef`], and a value that does not
//! decode is a [`StoreError::Corrupt`] naming the table, the row, the
//! column and the parse error.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;

use super::{StoreError, StoreResult};

/// A query parameter. Nulls are typed: PostgreSQL infers a parameter's
/// type from what is bound, and a text null for a `BIGINT` column fails.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A `BIGINT`, or null.
    Int(Option<i64>),
    /// A `TEXT`, or null.
    Text(Option<&'a str>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(Some(s))
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Text(Some(s))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(s: &'a Option<String>) -> Self {
        Value::Text(s.as_deref())
    }
}

impl From<i64> for Value<'_> {
    fn from(i: i64) -> Self {
        Value::Int(Some(i))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(i: Option<i64>) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value<'_> {
    fn from(b: bool) -> Self {
        Value::Int(Some(i64::from(b)))
    }
}

/// One value of a fetched row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    /// SQL `NULL`.
    Null,
    /// An integer column.
    Int(i64),
    /// A text column.
    Text(String),
}

/// The rows of one query, with their column names.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    /// Column names, in select order.
    pub columns: Arc<[String]>,
    /// The rows, each with one cell per column.
    pub rows: Vec<Vec<Cell>>,
}

impl Rows {
    /// The rows as decodable references, from `table`.
    pub fn iter(&self, table: &'static str) -> impl Iterator<Item = RowRef<'_>> {
        (0..self.rows.len()).map(move |index| RowRef {
            rows: self,
            index,
            table,
        })
    }

    /// The first row, if any.
    pub fn first(&self, table: &'static str) -> Option<RowRef<'_>> {
        self.iter(table).next()
    }

    /// How many rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// One row being decoded. By convention the first selected column is the
/// row's key, which [`StoreError::Corrupt`] names.
#[derive(Clone, Copy)]
pub struct RowRef<'a> {
    rows: &'a Rows,
    index: usize,
    table: &'static str,
}

impl fmt::Debug for RowRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowRef")
            .field("table", &self.table)
            .field("row", &self.key())
            .finish()
    }
}

impl<'a> RowRef<'a> {
    fn key(&self) -> String {
        match self.rows.rows[self.index].first() {
            Some(Cell::Text(s)) => s.clone(),
            Some(Cell::Int(i)) => i.to_string(),
            Some(Cell::Null) | None => "?".to_owned(),
        }
    }

    pub(crate) fn corrupt(&self, column: &str, error: impl fmt::Display) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            row: self.key(),
            column: column.to_owned(),
            error: error.to_string(),
        }
    }

    fn cell(&self, column: &str) -> StoreResult<&'a Cell> {
        let at = self
            .rows
            .columns
            .iter()
            .position(|c| c == column)
            .ok_or_else(|| self.corrupt(column, "no such column in the result"))?;
        Ok(&self.rows.rows[self.index][at])
    }

    /// A text column that may be null.
    pub fn opt_text(&self, column: &str) -> StoreResult<Option<&'a str>> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s)),
            Cell::Int(_) => Err(self.corrupt(column, "an integer where text was expected")),
        }
    }

    /// A text column that must not be null.
    pub fn text(&self, column: &str) -> StoreResult<&'a str> {
        self.opt_text(column)?
            .ok_or_else(|| self.corrupt(column, "null where a value was expected"))
    }

    /// A text column as an owned string.
    pub fn string(&self, column: &str) -> StoreResult<String> {
        self.text(column).map(str::to_owned)
    }

    /// A nullable text column as an owned string.
    pub fn opt_string(&self, column: &str) -> StoreResult<Option<String>> {
        Ok(self.opt_text(column)?.map(str::to_owned))
    }

    /// An integer column that may be null.
    pub fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        match self.cell(column)? {
            Cell::Null => Ok(None),
            Cell::Int(i) => Ok(Some(*i)),
            Cell::Text(_) => Err(self.corrupt(column, "text where an integer was expected")),
        }
    }

    /// An integer column that must not be null.
    pub fn int(&self, column: &str) -> StoreResult<i64> {
        self.opt_int(column)?
            .ok_or_else(|| self.corrupt(column, "null where a value was expected"))
    }

    /// A 0/1 flag.
    pub fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.int(column)? != 0)
    }

    /// A text column parsed into a typed value (a tag, a stage, a digest…).
    pub fn parse<T>(&self, column: &str) -> StoreResult<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let text = self.text(column)?;
        text.parse().map_err(|err| self.corrupt(column, err))
    }

    /// A text column parsed by `parse` (for types without `FromStr`).
    pub fn parse_with<T, E: fmt::Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<T> {
        let text = self.text(column)?;
        parse(text).map_err(|err| self.corrupt(column, err))
    }

    /// A nullable text column parsed by `parse`.
    pub fn opt_parse_with<T, E: fmt::Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> StoreResult<Option<T>> {
        self.opt_text(column)?
            .map(|text| parse(text).map_err(|err| self.corrupt(column, err)))
            .transpose()
    }

    /// A nullable text column parsed into a typed value.
    pub fn opt_parse<T>(&self, column: &str) -> StoreResult<Option<T>>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        self.opt_text(column)?
            .map(|text| text.parse().map_err(|err| self.corrupt(column, err)))
            .transpose()
    }
}

/// A database the store runs on.
///
/// `begin` opens a transaction on the single writer; `read` runs a query
/// on the readers, which never wait behind the writer (SQLite in WAL mode,
/// PostgreSQL's MVCC).
pub trait Backend: Send + Sync + 'static {
    /// A transaction on the writer.
    type Tx: Send;

    /// `sqlite` or `postgres`.
    const NAME: &'static str;

    /// Appended to the sub-select that picks rows to claim, so that two
    /// replicas never claim the same row (`FOR UPDATE SKIP LOCKED`).
    const CLAIM_LOCK: &'static str;

    /// Appended to a select of a row about to be updated (`FOR UPDATE`).
    const ROW_LOCK: &'static str;

    /// Begins a transaction on the writer.
    fn begin(&self) -> impl Future<Output = StoreResult<Self::Tx>> + Send + '_;

    /// Commits: when this returns `Ok`, the writes are durable.
    fn commit(tx: Self::Tx) -> impl Future<Output = StoreResult<()>> + Send;

    /// Runs a statement in a transaction; returns the rows affected.
    fn execute<'a>(
        tx: &'a mut Self::Tx,
        sql: &'a str,
        args: &'a [Value<'a>],
    ) -> impl Future<Output = StoreResult<u64>> + Send + 'a;

    /// Runs a query in a transaction; returns its rows.
    fn fetch<'a>(
        tx: &'a mut Self::Tx,
        sql: &'a str,
        args: &'a [Value<'a>],
    ) -> impl Future<Output = StoreResult<Rows>> + Send + 'a;

    /// Runs a read-only query on a reader.
    fn read<'a>(&'a self, sql: &'a str, args: &'a [Value<'a>]) -> impl Future<Output = StoreResult<Rows>> + Send + 'a;
}

/// Converts fetched rows into [`Rows`]: integers and text, by the type the
/// database reports for each value.
///
/// # Errors
///
/// [`StoreError::Corrupt`] for a value of another type (the schema has
/// none), or the driver's error.
pub fn to_rows<R>(fetched: &[R]) -> StoreResult<Rows>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database>,
    for<'r> i32: sqlx::Decode<'r, R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database>,
{
    use sqlx::{Column as _, TypeInfo as _, ValueRef as _};
    let Some(first) = fetched.first() else {
        return Ok(Rows::default());
    };
    let columns: Arc<[String]> = first.columns().iter().map(|c| c.name().to_owned()).collect();
    let mut rows = Vec::with_capacity(fetched.len());
    for (n, row) in fetched.iter().enumerate() {
        let mut cells = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                cells.push(Cell::Null);
                continue;
            }
            let kind = raw.type_info().name().to_ascii_uppercase();
            cells.push(match kind.as_str() {
                "INT4" => Cell::Int(i64::from(row.try_get_unchecked::<i32, _>(i)?)),
                "INT8" | "BIGINT" | "INTEGER" => Cell::Int(row.try_get_unchecked::<i64, _>(i)?),
                k if k.contains("TEXT") || k.contains("CHAR") || k.contains("CLOB") => {
                    Cell::Text(row.try_get_unchecked::<String, _>(i)?)
                }
                other => {
                    return Err(StoreError::Corrupt {
                        table: "(query)",
                        row: n.to_string(),
                        column: column.clone(),
                        error: format!("a value of type {other}, neither integer nor text"),
                    });
                }
            });
        }
        rows.push(cells);
    }
    Ok(Rows { columns, rows })
}

/// `$first, $first+1, …` for `n` parameters: the placeholders of an `IN`
/// list or a `VALUES` row, in the `$N` form both databases accept.
pub fn placeholders(first: usize, n: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in 0..n {
        if i > 0 {
            out.push_str(", ");
        }
        out.push('$');
        out.push_str(&(first + i).to_string());
    }
    out
}

/// `($1, …, $w), ($w+1, …)`: `rows` tuples of `width` parameters.
pub fn value_rows(rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        out.push_str(&placeholders(1 + r * width, width));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: Vec<Cell>) -> Rows {
        Rows {
            columns: vec!["id".to_owned(), "tag".to_owned(), "n".to_owned()].into(),
            rows: vec![cells],
        }
    }

    #[test]
    fn a_value_that_does_not_decode_is_corrupt_and_says_where() {
        let r = rows(vec![Cell::Text("d-1".into()), Cell::Text("v1.0".into()), Cell::Null]);
        let row = r.first("deliveries").unwrap();
        let err = row.parse::<tagcast_spec::Tag>("tag").unwrap_err();
        let StoreError::Corrupt {
            table,
            row,
            column,
            error,
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!((*table, row.as_str(), column.as_str()), ("deliveries", "d-1", "tag"));
        assert!(error.contains("v1.0"), "{error}");
        assert!(err.to_string().contains("deliveries"), "{err}");
        let row = r.first("deliveries").unwrap();
        assert!(
            matches!(row.int("n"), Err(StoreError::Corrupt { .. })),
            "null is not a value"
        );
        assert!(
            matches!(row.int("tag"), Err(StoreError::Corrupt { .. })),
            "text is not an integer"
        );
        assert_eq!(row.opt_int("n").unwrap(), None);
    }

    #[test]
    fn placeholder_lists() {
        assert_eq!(placeholders(3, 2), "$3, $4");
        assert_eq!(value_rows(2, 2), "($1, $2), ($3, $4)");
    }
}
