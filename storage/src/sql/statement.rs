//! A statement as the SQL core writes it: its text, with `$1`, `$2`, ... placeholders,
//! and the values bound to them. Both dialects take that placeholder form (sqlx maps
//! SQLite's `$N` to the N-th value), so one text serves both; what each dialect renders
//! differently (a list of ids, a set of rows) it writes through [`super::Dialect`].

use std::borrow::Cow;

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg<'a> {
    /// A 64-bit integer, or NULL.
    Int(Option<i64>),
    /// A double, or NULL.
    Float(Option<f64>),
    /// Text, or NULL.
    Text(Option<Cow<'a, str>>),
    /// Integers: a column of [`super::Dialect::rows`], or an array (PostgreSQL).
    Ints(Vec<Option<i64>>),
    /// Doubles: a column of rows, or an array (PostgreSQL).
    Floats(Vec<Option<f64>>),
    /// Texts: a column of rows, or an array (PostgreSQL).
    Texts(Vec<Option<Cow<'a, str>>>),
}

impl<'a> Arg<'a> {
    /// How many values it holds: 1 for a scalar.
    pub fn len(&self) -> usize {
        match self {
            Arg::Ints(v) => v.len(),
            Arg::Floats(v) => v.len(),
            Arg::Texts(v) => v.len(),
            _ => 1,
        }
    }

    /// Whether it is an empty array.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its values one by one, as scalars (a scalar gives itself).
    pub fn into_scalars(self) -> Box<dyn Iterator<Item = Arg<'a>> + 'a> {
        match self {
            Arg::Ints(v) => Box::new(v.into_iter().map(Arg::Int)),
            Arg::Floats(v) => Box::new(v.into_iter().map(Arg::Float)),
            Arg::Texts(v) => Box::new(v.into_iter().map(Arg::Text)),
            scalar => Box::new(std::iter::once(scalar)),
        }
    }
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl From<f64> for Arg<'_> {
    fn from(value: f64) -> Self {
        Arg::Float(Some(value))
    }
}

impl From<Option<f64>> for Arg<'_> {
    fn from(value: Option<f64>) -> Self {
        Arg::Float(value)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(Some(Cow::Borrowed(value)))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::Text(value.map(Cow::Borrowed))
    }
}

impl From<String> for Arg<'_> {
    fn from(value: String) -> Self {
        Arg::Text(Some(Cow::Owned(value)))
    }
}

impl From<Option<String>> for Arg<'_> {
    fn from(value: Option<String>) -> Self {
        Arg::Text(value.map(Cow::Owned))
    }
}

/// A statement: SQL text and the values of its placeholders.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Statement<'a> {
    sql: String,
    args: Vec<Arg<'a>>,
}

impl<'a> Statement<'a> {
    /// A statement with this text; its placeholders are bound with [`Statement::arg`] in
    /// order.
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            args: Vec::new(),
        }
    }

    /// Binds the next placeholder of the text.
    pub fn arg(mut self, value: impl Into<Arg<'a>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Binds `value` to a new placeholder and returns the placeholder (`$N`), for text
    /// written piece by piece.
    pub fn bind(&mut self, value: impl Into<Arg<'a>>) -> String {
        let mut placeholder = String::new();
        self.bind_into(value, &mut placeholder);
        placeholder
    }

    /// Binds `value` to a new placeholder and writes the placeholder (`$N`) at the end of
    /// `text`: for text of many placeholders, written without a string per value.
    pub fn bind_into(&mut self, value: impl Into<Arg<'a>>, text: &mut String) {
        use std::fmt::Write as _;
        self.args.push(value.into());
        // Writing to a String cannot fail.
        let _ = write!(text, "${}", self.args.len());
    }

    /// Appends text.
    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Binds `value` to a new placeholder and appends it.
    pub fn push_bind(&mut self, value: impl Into<Arg<'a>>) -> &mut Self {
        let placeholder = self.bind(value);
        self.sql.push_str(&placeholder);
        self
    }

    /// The text.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The bound values, in placeholder order.
    pub fn args(&self) -> &[Arg<'a>] {
        &self.args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_number_the_values_in_binding_order() {
        let mut stmt = Statement::new("SELECT 1 WHERE a = $1").arg(7i64);
        stmt.push(" AND b = ").push_bind("x");
        let again = stmt.bind(2.5);
        stmt.push(" AND c = ")
            .push(&again)
            .push(" AND d = ")
            .push(&again);
        assert_eq!(
            stmt.sql(),
            "SELECT 1 WHERE a = $1 AND b = $2 AND c = $3 AND d = $3"
        );
        assert_eq!(
            stmt.args(),
            &[Arg::Int(Some(7)), "x".into(), Arg::Float(Some(2.5))]
        );
    }
}
