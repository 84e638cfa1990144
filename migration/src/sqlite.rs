//! What SQLite's `ALTER TABLE` cannot do, done by rebuilding the table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DatabaseBackend, Statement};

/// Make columns of `table` optional: SQLite cannot drop NOT NULL, so the table is rebuilt from
/// its own definition with each `required` column definition replaced by its optional one,
/// rows and indexes kept. Fails if a definition is not found as written.
pub(crate) async fn relax(
    manager: &SchemaManager<'_>,
    table: &str,
    required: &[(&str, &str)],
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    let row = db
        .query_one(Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
            [table.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::Migration(format!("the {table} table is missing")))?;
    let mut sql: String = row.try_get("", "sql")?;
    for (needed, optional) in required {
        if !sql.contains(needed) {
            return Err(DbErr::Migration(format!(
                "{table}: {needed} not found in {sql}"
            )));
        }
        sql = sql.replacen(needed, optional, 1);
    }
    let rebuilt = format!("{table}_rebuilt");
    let sql = sql.replacen(&format!("\"{table}\""), &format!("\"{rebuilt}\""), 1);
    let indexes: Vec<String> = db
        .query_all(Statement::from_sql_and_values(
            DatabaseBackend::Sqlite,
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? \
             AND sql IS NOT NULL",
            [table.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "sql"))
        .collect::<Result<_, _>>()?;
    let mut steps = vec![
        sql,
        format!("INSERT INTO {rebuilt} SELECT * FROM {table}"),
        format!("DROP TABLE {table}"),
        format!("ALTER TABLE {rebuilt} RENAME TO {table}"),
    ];
    steps.extend(indexes);
    // One batch on one connection: another connection of the pool could still see the old
    // table.
    db.execute_unprepared(&steps.join(";\n")).await?;
    Ok(())
}
