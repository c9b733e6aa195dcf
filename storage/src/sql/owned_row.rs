//! A row whose values are its own: what SQLite's reader threads hand back (a row cannot
//! leave the thread that steps its statement), and what the SQLite dialect makes of
//! sqlx's rows, so the dialect has one row type.

use std::sync::Arc;

use sqlx::sqlite::{SqliteRow, SqliteValueRef};
use sqlx::{Column, Decode, Row, TypeInfo, ValueRef};

use super::rows::SqlRow;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text.
    Text(String),
    /// Bytes (Mnemo's schema has none; kept so nothing is read wrong).
    Blob(Vec<u8>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Int(_) => "INTEGER",
            Value::Float(_) => "REAL",
            Value::Text(_) => "TEXT",
            Value::Blob(_) => "BLOB",
        }
    }
}

/// A row: its columns' names (shared by every row of one statement) and its values.
#[derive(Debug, Clone)]
pub struct OwnedRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl OwnedRow {
    /// A row of `values`, named by `columns` in the same order.
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Self { columns, values }
    }

    /// The same values as sqlx's row (SQLite's dynamic type of each value decides).
    pub fn from_sqlite(row: &SqliteRow, columns: &mut Option<Arc<[String]>>) -> sqlx::Result<Self> {
        let columns = columns
            .get_or_insert_with(|| row.columns().iter().map(|c| c.name().to_owned()).collect())
            .clone();
        let mut values = Vec::with_capacity(columns.len());
        for index in 0..columns.len() {
            let raw: SqliteValueRef<'_> = row.try_get_raw(index)?;
            let decode = |e| sqlx::Error::ColumnDecode {
                index: index.to_string(),
                source: e,
            };
            let value = if raw.is_null() {
                Value::Null
            } else {
                match raw.type_info().name() {
                    "INTEGER" | "BOOLEAN" => {
                        Value::Int(<i64 as Decode<'_, sqlx::Sqlite>>::decode(raw).map_err(decode)?)
                    }
                    "REAL" => Value::Float(
                        <f64 as Decode<'_, sqlx::Sqlite>>::decode(raw).map_err(decode)?,
                    ),
                    "BLOB" => Value::Blob(
                        <Vec<u8> as Decode<'_, sqlx::Sqlite>>::decode(raw).map_err(decode)?,
                    ),
                    _ => Value::Text(
                        <String as Decode<'_, sqlx::Sqlite>>::decode(raw).map_err(decode)?,
                    ),
                }
            };
            values.push(value);
        }
        Ok(Self { columns, values })
    }

    fn value(&self, column: &str) -> sqlx::Result<(usize, &Value)> {
        self.columns
            .iter()
            .position(|c| c == column)
            .map(|i| (i, &self.values[i]))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(column.to_owned()))
    }

    fn mismatch(index: usize, wanted: &str, found: &Value) -> sqlx::Error {
        sqlx::Error::ColumnDecode {
            index: index.to_string(),
            source: format!(
                "a {wanted} was read where the row holds {}",
                found.type_name()
            )
            .into(),
        }
    }
}

impl SqlRow for OwnedRow {
    fn int(&self, column: &str) -> sqlx::Result<i64> {
        match self.opt_int(column)? {
            Some(v) => Ok(v),
            None => Err(Self::mismatch(
                self.value(column)?.0,
                "INTEGER",
                &Value::Null,
            )),
        }
    }

    fn opt_int(&self, column: &str) -> sqlx::Result<Option<i64>> {
        match self.value(column)? {
            (_, Value::Null) => Ok(None),
            (_, Value::Int(v)) => Ok(Some(*v)),
            (i, other) => Err(Self::mismatch(i, "INTEGER", other)),
        }
    }

    fn float(&self, column: &str) -> sqlx::Result<f64> {
        match self.opt_float(column)? {
            Some(v) => Ok(v),
            None => Err(Self::mismatch(self.value(column)?.0, "REAL", &Value::Null)),
        }
    }

    fn opt_float(&self, column: &str) -> sqlx::Result<Option<f64>> {
        match self.value(column)? {
            (_, Value::Null) => Ok(None),
            (_, Value::Float(v)) => Ok(Some(*v)),
            // SQLite keeps a whole REAL computed by an expression (max(), a sum) as an
            // integer.
            (_, Value::Int(v)) => Ok(Some(*v as f64)),
            (i, other) => Err(Self::mismatch(i, "REAL", other)),
        }
    }

    fn text(&self, column: &str) -> sqlx::Result<String> {
        match self.opt_text(column)? {
            Some(v) => Ok(v),
            None => Err(Self::mismatch(self.value(column)?.0, "TEXT", &Value::Null)),
        }
    }

    fn opt_text(&self, column: &str) -> sqlx::Result<Option<String>> {
        match self.value(column)? {
            (_, Value::Null) => Ok(None),
            (_, Value::Text(v)) => Ok(Some(v.clone())),
            (i, other) => Err(Self::mismatch(i, "TEXT", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> OwnedRow {
        let columns: Arc<[String]> = ["n", "x", "t", "none"].map(String::from).into();
        OwnedRow::new(
            columns,
            vec![
                Value::Int(3),
                Value::Float(1.5),
                Value::Text("hi".into()),
                Value::Null,
            ],
        )
    }

    #[test]
    fn columns_are_read_by_name_and_null_only_where_optional() {
        let row = row();
        assert_eq!(row.int("n").unwrap(), 3);
        assert_eq!(row.float("x").unwrap(), 1.5);
        assert_eq!(row.float("n").unwrap(), 3.0, "an integer reads as a double");
        assert_eq!(row.text("t").unwrap(), "hi");
        assert_eq!(row.opt_int("none").unwrap(), None);
        assert_eq!(row.opt_text("none").unwrap(), None);
        assert!(matches!(
            row.int("none"),
            Err(sqlx::Error::ColumnDecode { .. })
        ));
        assert!(matches!(
            row.int("t"),
            Err(sqlx::Error::ColumnDecode { .. })
        ));
        assert!(matches!(
            row.text("n"),
            Err(sqlx::Error::ColumnDecode { .. })
        ));
        assert!(
            matches!(row.int("missing"), Err(sqlx::Error::ColumnNotFound(c)) if c == "missing")
        );
    }
}
