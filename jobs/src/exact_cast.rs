//! Casts that never lose a value silently. A raw value its column's type
//! cannot hold (1.9 into an integer, 2026-01-31 10:00 into a date, 'abc'
//! into a number) fails the job, naming the file, the column and the value,
//! unless the column says `cast: lossy`. Casts that cannot lose anything
//! (int32 to int64, a type to itself) stay plain casts and cost nothing;
//! the others are checked batch by batch as the rows stream through.

use std::any::Any;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float32Array, Float64Array, Scalar};
use arrow::compute::kernels::cmp::neq;
use arrow::compute::kernels::numeric::add;
use arrow::compute::{CastOptions, can_cast_types, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{DataFusionError, Result, exec_datafusion_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{Expr, cast};

/// Raw values fail rather than turn into nulls.
const STRICT: CastOptions = CastOptions {
    safe: false,
    format_options: FormatOptions::new(),
};
/// For the comparison only: what a reference type cannot hold is skipped.
const LENIENT: CastOptions = CastOptions {
    safe: true,
    format_options: FormatOptions::new(),
};

/// One raw column's way into its declared type.
pub(crate) struct ColumnCast<'a> {
    /// The column's name in the raw files.
    pub raw_name: &'a str,
    /// The declared type as the spec writes it (`int64`).
    pub type_name: &'a str,
    /// `cast: lossy`: values may change (lose a fraction, a time of day),
    /// but a value that does not convert at all still fails.
    pub lossy: bool,
}

impl ColumnCast<'_> {
    /// `value` (of type `from`) as `to`; `file` is each row's file URI.
    pub fn expr(&self, value: Expr, from: &DataType, to: &DataType, file: Expr) -> Expr {
        // A cast Arrow cannot do at all fails when planned, as a plain cast.
        if never_loses(from, to) || !can_cast_types(from, to) {
            return cast(value, to.clone());
        }
        let check = ExactCast {
            raw_name: self.raw_name.to_string(),
            type_name: self.type_name.to_string(),
            to: to.clone(),
            reference: (!self.lossy).then(|| reference_type(from, to)).flatten(),
            signature: Signature::any(2, Volatility::Immutable),
        };
        ScalarUDF::new_from_impl(check).call(vec![value, file])
    }
}

/// Whether every value of `from` has one exact value in `to`.
fn never_loses(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to || from.is_null() {
        return true;
    }
    match (from, to) {
        (Dictionary(_, value), _) => never_loses(value, to),
        // Numbers, dates and text print exactly.
        (_, Utf8) => {
            from.is_numeric()
                || from.is_temporal()
                || matches!(from, Boolean | LargeUtf8 | Utf8View)
        }
        (LargeBinary | BinaryView, Binary) => true,
        (Int8, Int16 | Int32 | Int64)
        | (Int16, Int32 | Int64)
        | (Int32, Int64)
        | (UInt8, Int16 | Int32 | Int64)
        | (UInt16, Int32 | Int64)
        | (UInt32, Int64) => true,
        (Int8 | Int16 | UInt8 | UInt16, Float32 | Float64) | (Int32 | UInt32, Float64) => true,
        (Float16, Float32 | Float64) | (Float32, Float64) => true,
        (Decimal128(p, s), Decimal128(to_p, to_s)) => {
            to_s >= s && i16::from(*to_p) - i16::from(*to_s) >= i16::from(*p) - i16::from(*s)
        }
        (_, Decimal128(p, s)) => integer_digits(from)
            .is_some_and(|digits| i16::from(digits) <= i16::from(*p) - i16::from(*s)),
        _ => false,
    }
}

/// The most decimal digits a value of an integer type has.
fn integer_digits(data_type: &DataType) -> Option<u8> {
    use DataType::*;
    match data_type {
        Int8 | UInt8 => Some(3),
        Int16 | UInt16 => Some(5),
        Int32 | UInt32 => Some(10),
        Int64 => Some(19),
        UInt64 => Some(20),
        _ => None,
    }
}

/// A type that holds each raw value at least as exactly as `to` does, to
/// compare the raw value with what the cast made of it: the raw type
/// itself, or for text a finer version of the target (text itself would
/// not compare: `1.50` and `1.5` are one number). `None`: nothing to check,
/// as text becomes an integer exactly or not at all, and a float or a
/// boolean has nothing finer to lose.
fn reference_type(from: &DataType, to: &DataType) -> Option<DataType> {
    use DataType::*;
    match from {
        Dictionary(_, value) => reference_type(value, to),
        Utf8 | LargeUtf8 | Utf8View => match to {
            // As many integer digits, the most fractional digits there are.
            Decimal128(p, s) => Some(Decimal128(38, *s + (38 - *p) as i8)),
            Date32 => Some(Timestamp(TimeUnit::Microsecond, None)),
            Timestamp(_, zone) => Some(Timestamp(TimeUnit::Nanosecond, zone.clone())),
            _ => None,
        },
        other => Some(other.clone()),
    }
}

/// `exact_cast(value, source_file)`: the cast, or an error naming the file,
/// the column and the first value that does not convert exactly.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ExactCast {
    raw_name: String,
    type_name: String,
    to: DataType,
    /// Where values are compared after the cast; `None`: they are not.
    reference: Option<DataType>,
    signature: Signature,
}

impl ScalarUDFImpl for ExactCast {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "exact_cast"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(self.to.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (raw, files) = (&arrays[0], &arrays[1]);
        let cast = match cast_with_options(raw, &self.to, &STRICT) {
            Ok(cast) => cast,
            Err(error) => return Err(self.does_not_cast(raw, files, error)),
        };
        if let Some(reference) = &self.reference
            && let Some(row) = first_changed(raw, &cast, reference)?
        {
            return Err(exec_datafusion_err!(
                "{}: raw column `{}` holds {}, which {} cannot hold exactly (it would be stored as {}); fix the file, declare a type that holds it, or set `cast: lossy` on the column to accept the change",
                text(files, row)?,
                self.raw_name,
                shown(raw, row)?,
                self.type_name,
                shown(&cast, row)?
            ));
        }
        Ok(ColumnarValue::Array(cast))
    }
}

impl ExactCast {
    /// The error for a batch that does not cast, about its first bad value.
    fn does_not_cast(
        &self,
        raw: &ArrayRef,
        files: &ArrayRef,
        error: arrow::error::ArrowError,
    ) -> DataFusionError {
        let bad = (0..raw.len())
            .find(|&row| cast_with_options(&raw.slice(row, 1), &self.to, &STRICT).is_err());
        let Some(row) = bad else {
            return DataFusionError::ArrowError(Box::new(error), None);
        };
        match (text(files, row), shown(raw, row)) {
            (Ok(file), Ok(value)) => exec_datafusion_err!(
                "{file}: raw column `{}` holds {value}, which does not cast to {}; fix the file, or declare the column with a type that holds it",
                self.raw_name,
                self.type_name
            ),
            (Err(e), _) | (_, Err(e)) => e,
        }
    }
}

/// The first row whose value the cast changed, compared in `reference`.
fn first_changed(raw: &ArrayRef, cast: &ArrayRef, reference: &DataType) -> Result<Option<usize>> {
    let before = comparable(cast_with_options(raw, reference, &LENIENT)?)?;
    let after = comparable(cast_with_options(cast, reference, &LENIENT)?)?;
    // Null where either side is null: nothing to compare there.
    let changed = neq(&before, &after)?;
    if changed.true_count() == 0 {
        return Ok(None);
    }
    Ok(changed.iter().position(|c| c == Some(true)))
}

/// Floats compare bit by bit: -0.0 becomes 0.0, which a cast to an
/// integer and back makes of it too.
fn comparable(array: ArrayRef) -> Result<ArrayRef> {
    let zero: ArrayRef = match array.data_type() {
        DataType::Float64 => Arc::new(Float64Array::from(vec![0.0])),
        DataType::Float32 => Arc::new(Float32Array::from(vec![0.0])),
        _ => return Ok(array),
    };
    Ok(add(&array, &Scalar::new(zero))?)
}

/// A value as an error message shows it: text quoted.
fn shown(array: &ArrayRef, row: usize) -> Result<String> {
    let quoted = matches!(
        array.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
    );
    let text = text(array, row)?;
    Ok(if quoted { format!("'{text}'") } else { text })
}

fn text(array: &ArrayRef, row: usize) -> Result<String> {
    Ok(
        ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default())?
            .value(row)
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use arrow::array::StringArray;

    use super::*;

    /// The first value `cast_with_options` changes on its way to `to`.
    fn first_loss(raw: ArrayRef, to: DataType) -> Option<usize> {
        let cast = cast_with_options(&raw, &to, &STRICT).unwrap();
        let reference = reference_type(raw.data_type(), &to).unwrap();
        first_changed(&raw, &cast, &reference).unwrap()
    }

    #[test]
    fn values_the_cast_changes_are_found() {
        let floats: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(2.0),
            None,
            Some(-0.0),
            Some(1.9),
        ]));
        assert_eq!(first_loss(floats, DataType::Int64), Some(3));
        let text = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
        assert_eq!(
            first_loss(
                text(vec!["1.50", "1.5", "-0.25", "1.234"]),
                DataType::Decimal128(10, 2)
            ),
            Some(3)
        );
        assert_eq!(
            first_loss(
                text(vec![
                    "2026-01-31",
                    "2026-01-31 00:00:00",
                    "2026-01-31 10:30:00"
                ]),
                DataType::Date32
            ),
            Some(2)
        );
        assert_eq!(
            first_loss(
                text(vec![
                    "2026-01-31 10:30:00.123456",
                    "2026-01-31 10:30:00.123456789"
                ]),
                DataType::Timestamp(TimeUnit::Microsecond, None)
            ),
            Some(1)
        );
        let decimals: ArrayRef = Arc::new(
            arrow::array::Decimal128Array::from(vec![1_230, 1_234])
                .with_precision_and_scale(10, 3)
                .unwrap(),
        );
        assert_eq!(first_loss(decimals, DataType::Decimal128(10, 2)), Some(1));
    }

    #[test]
    fn widening_casts_are_not_checked() {
        use DataType::*;
        for (from, to) in [
            (Int32, Int64),
            (Int64, Int64),
            (Utf8View, Utf8),
            (Float32, Float64),
            (Int64, Decimal128(19, 0)),
            (Decimal128(10, 2), Decimal128(12, 3)),
            (Date32, Utf8),
        ] {
            assert!(never_loses(&from, &to), "{from} -> {to}");
        }
        for (from, to) in [
            (Float64, Int64),
            (Int64, Int32),
            (Int64, Float64),
            (Utf8, Int64),
            (Decimal128(10, 3), Decimal128(10, 2)),
            (Decimal128(12, 2), Decimal128(10, 2)),
            (Int64, Decimal128(18, 0)),
            (Timestamp(TimeUnit::Microsecond, None), Date32),
            (
                Timestamp(TimeUnit::Nanosecond, None),
                Timestamp(TimeUnit::Microsecond, None),
            ),
        ] {
            assert!(!never_loses(&from, &to), "{from} -> {to}");
        }
    }
}
