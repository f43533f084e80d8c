//! PyIceberg, a second Iceberg implementation, opens medallion's SQLite
//! catalog and reads the tables. A table only medallion can read is not an
//! Iceberg table.

use crate::support::{Lakehouse, SCALE, assert_pyiceberg_read, expected_from_raw, pyiceberg};

#[test]
fn pyiceberg_reads_every_table_medallion_wrote() {
    let lakehouse = Lakehouse::new();
    lakehouse.report(&["demo", "--scale", SCALE]);
    let expected = expected_from_raw(&lakehouse);
    let facts =
        pyiceberg(&["sql", lakehouse.path().to_str().unwrap()], &[]).expect("facts as JSON");
    assert_pyiceberg_read(&facts, &expected);
}
