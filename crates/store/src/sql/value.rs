//! The values that cross between the business SQL and a database engine: parameters borrowed
//! from the caller, and rows owned by the caller. Both engines map them to their own types, so
//! that one SQL text and one row mapping serve SQLite and PostgreSQL alike.

use std::sync::Arc;

use crate::StoreError;

/// A parameter of a statement. Integers of every width and booleans are `Int`: SQLite stores
/// them so, and the PostgreSQL engine writes them as the column's type asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Anything that can be bound as a statement parameter.
pub trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

macro_rules! int_values {
    ($($int:ty),*) => {$(
        impl ToValue for $int {
            fn to_value(&self) -> Value<'_> {
                Value::Int(i64::from(*self))
            }
        }
    )*};
}
int_values!(i64, i32, u32, u16, bool);

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

/// Core's checked texts, stored as their text and checked again as they are read.
macro_rules! text_values {
    ($($text:ty),*) => {$(
        impl ToValue for $text {
            fn to_value(&self) -> Value<'_> {
                Value::Text(self.as_str())
            }
        }

        impl FromCell for $text {
            fn from_cell(cell: &Cell) -> Option<Self> {
                match cell {
                    Cell::Text(text) => <$text>::parse(text).ok(),
                    _ => None,
                }
            }
        }
    )*};
}
text_values!(ocpay_core::text::Mcc, ocpay_core::text::Region);

impl<const MAX: usize> ToValue for ocpay_core::text::BoundedText<MAX> {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self.as_str())
    }
}

impl<const MAX: usize> FromCell for ocpay_core::text::BoundedText<MAX> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(text) => Self::parse(text).ok(),
            _ => None,
        }
    }
}

impl ToValue for [u8] {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

/// The parameters of one statement, bound in order as `?1`, `?2`, ...
macro_rules! params {
    ($($value:expr),* $(,)?) => {
        &[$($crate::sql::ToValue::to_value(&$value)),*] as &[$crate::sql::Value<'_>]
    };
}
pub(crate) use params;

/// One value of a row, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl ToValue for Cell {
    fn to_value(&self) -> Value<'_> {
        match self {
            Cell::Null => Value::Null,
            Cell::Int(value) => Value::Int(*value),
            Cell::Text(text) => Value::Text(text),
            Cell::Blob(bytes) => Value::Blob(bytes),
        }
    }
}

impl From<Value<'_>> for Cell {
    fn from(value: Value<'_>) -> Cell {
        match value {
            Value::Null => Cell::Null,
            Value::Int(value) => Cell::Int(value),
            Value::Text(text) => Cell::Text(text.to_owned()),
            Value::Blob(bytes) => Cell::Blob(bytes.to_vec()),
        }
    }
}

/// The names of a result's columns, shared by its rows.
pub type Columns = Arc<[String]>;

/// One row of a result, with the names of its columns.
#[derive(Debug, Clone)]
pub struct Row {
    pub(crate) columns: Columns,
    pub(crate) cells: Vec<Cell>,
}

/// A column of a row, by position or by name.
pub trait ColumnIndex {
    fn position(&self, row: &Row) -> Result<usize, StoreError>;
}

impl ColumnIndex for usize {
    fn position(&self, row: &Row) -> Result<usize, StoreError> {
        if *self < row.cells.len() {
            Ok(*self)
        } else {
            Err(StoreError::Corrupt(format!("no column {self} in a row of {}", row.cells.len())))
        }
    }
}

impl ColumnIndex for &str {
    fn position(&self, row: &Row) -> Result<usize, StoreError> {
        row.columns
            .iter()
            .position(|column| column == self)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {self} in the row")))
    }
}

/// A Rust value read from a cell; a cell of another kind is corrupt data, never a default.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(value) => Some(*value),
            _ => None,
        }
    }
}

impl FromCell for u32 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        i64::from_cell(cell).and_then(|value| u32::try_from(value).ok())
    }
}

impl FromCell for bool {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match i64::from_cell(cell)? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl FromCell for Vec<u8> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Blob(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

impl Row {
    /// The value of a column, as `T`.
    pub fn get<I: ColumnIndex, T: FromCell>(&self, index: I) -> Result<T, StoreError> {
        let position = index.position(self)?;
        let cell = &self.cells[position];
        T::from_cell(cell).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "column {} holds {cell:?}, not a {}",
                self.columns.get(position).map_or("?", String::as_str),
                std::any::type_name::<T>()
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: Vec<Cell>) -> Row {
        let columns: Vec<String> = (0..cells.len()).map(|n| format!("c{n}")).collect();
        Row { columns: columns.into(), cells }
    }

    #[test]
    fn cells_read_back_only_as_their_own_kind() {
        let row = row(vec![Cell::Int(7), Cell::Null, Cell::Text("x".into()), Cell::Int(2), Cell::Int(-1)]);
        assert_eq!(row.get::<_, i64>(0).unwrap(), 7);
        assert_eq!(row.get::<_, i64>("c0").unwrap(), 7);
        assert_eq!(row.get::<_, Option<String>>(1).unwrap(), None);
        assert_eq!(row.get::<_, Option<String>>("c2").unwrap(), Some("x".to_owned()));
        assert!(row.get::<_, i64>(1).is_err(), "NULL is not a number");
        assert!(row.get::<_, String>(0).is_err(), "a number is not text");
        assert!(row.get::<_, bool>(3).is_err(), "2 is not a boolean");
        assert!(row.get::<_, u32>(4).is_err(), "-1 is not a u32");
        assert!(row.get::<_, i64>("missing").is_err());
        assert!(row.get::<_, i64>(9).is_err());
    }

    #[test]
    fn parameters_bind_as_their_kind() {
        let (text, bytes) = (String::from("t"), vec![1_u8]);
        let bound = params![1_i64, true, Some(3_u32), None::<&str>, text, "s", bytes];
        assert_eq!(
            bound,
            &[
                Value::Int(1),
                Value::Int(1),
                Value::Int(3),
                Value::Null,
                Value::Text("t"),
                Value::Text("s"),
                Value::Blob(&[1])
            ]
        );
    }
}
