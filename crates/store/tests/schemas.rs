//! The SQLite and PostgreSQL schemas agree: the same tables, columns (types mapped), primary
//! keys, unique constraints, foreign keys, checks (by the columns they read) and indexes, read
//! back from a migrated SQLite file
//! pair and a migrated PostgreSQL scratch schema. The business SQL is written once for both
//! engines, so a column or an index that one of them lacks is a bug waiting for that engine.
//! Where they differ on purpose, the difference is listed here with its reason.

use std::collections::{BTreeMap, BTreeSet};

use ocpay_store::conformance;
use ocpay_store::postgres::{PostgresSettings, PostgresStore};
use ocpay_store::sqlite::{SqliteSettings, SqliteStore};

/// Tables only PostgreSQL has.
const POSTGRES_ONLY_TABLES: &[(&str, &str)] =
    &[("ocpay_schema", "counts PostgreSQL's migrations; SQLite counts them in PRAGMA user_version")];

/// Columns only PostgreSQL has.
const POSTGRES_ONLY_COLUMNS: &[(&str, &str, &str)] = &[
    ("refund", "rowid", "SQLite's implicit row id, made explicit so that one query orders rows alike"),
    ("registration", "rowid", "SQLite's implicit row id, made explicit so that one query orders rows alike"),
];

/// Foreign keys (table, columns) only SQLite has.
const SQLITE_ONLY_FOREIGN_KEYS: &[(&str, &str, &str)] = &[(
    "entry",
    "posting_id",
    "on PostgreSQL its check made concurrent payments fail to serialise; the ledger check finds an entry without its posting",
)];

#[derive(Debug, Default, PartialEq)]
struct Table {
    /// By name: the order of columns differs where SQLite added them later, and every query
    /// names its columns.
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    unique: BTreeSet<Vec<String>>,
    /// (columns, referenced table, referenced columns)
    foreign_keys: BTreeSet<(Vec<String>, String, Vec<String>)>,
    /// Indexes made with `CREATE INDEX`, by name.
    indexes: BTreeMap<String, Index>,
    /// The columns each CHECK constraint reads, sorted: the engines word the same condition
    /// differently (PostgreSQL turns `IN (...)` into `= ANY (ARRAY[...])`), but a check that one
    /// of them lacks or puts on other columns shows.
    checks: Vec<Vec<String>>,
}

#[derive(Debug, PartialEq)]
struct Column {
    /// `INTEGER`, `TEXT` or `BLOB`, as SQLite names them.
    kind: String,
    not_null: bool,
    default: Option<String>,
}

#[derive(Debug, PartialEq)]
struct Index {
    unique: bool,
    columns: Vec<String>,
    /// A partial index's condition, without the parentheses and casts PostgreSQL adds.
    predicate: Option<String>,
}

type Schema = BTreeMap<String, Table>;

fn predicate(text: &str) -> String {
    let text = text.replace("::text", "").replace(['(', ')'], " ");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The conditions of the CHECK constraints in an SQLite `CREATE TABLE` statement.
fn sqlite_checks(sql: &str) -> Vec<String> {
    let sql: String =
        sql.lines().map(|line| line.split("--").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
    let mut conditions = Vec::new();
    let mut rest = sql.as_str();
    while let Some(at) = rest.find("CHECK") {
        rest = rest[at + "CHECK".len()..].trim_start();
        let (mut depth, mut quoted) = (0, false);
        for (index, character) in rest.char_indices() {
            match character {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        conditions.push(rest[1..index].to_owned());
                        rest = &rest[index..];
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    conditions
}

/// The columns of `table` a condition reads, sorted, leaving out what is in quotes.
fn columns_read(condition: &str, table: &Table) -> Vec<String> {
    let unquoted: String = condition.split('\'').step_by(2).collect::<Vec<_>>().join(" ");
    let words: BTreeSet<&str> =
        unquoted.split(|character: char| !(character.is_ascii_alphanumeric() || character == '_')).collect();
    words.into_iter().filter(|word| table.columns.contains_key(*word)).map(str::to_owned).collect()
}

fn sqlite_schema(files: &[std::path::PathBuf]) -> Schema {
    let mut schema = Schema::new();
    for file in files {
        let connection = rusqlite::Connection::open(file).unwrap();
        let names: Vec<(String, String)> = connection
            .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (name, sql) in names {
            let mut table = Table::default();
            let mut primary_key = Vec::new();
            let mut statement = connection
                .prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?1)")
                .unwrap();
            let mut rows = statement.query([&name]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let column: String = row.get(0).unwrap();
                let position: i64 = row.get(4).unwrap();
                if position > 0 {
                    primary_key.push((position, column.clone()));
                }
                // SQLite lets a primary key other than an INTEGER one hold NULL (a bug kept for
                // compatibility, as its documentation says); PostgreSQL never does. The store
                // never writes one, so a key column counts as NOT NULL here.
                let not_null = row.get::<_, bool>(2).unwrap() || position > 0;
                let kind = row.get::<_, String>(1).unwrap().to_uppercase();
                table.columns.insert(column, Column { kind, not_null, default: row.get(3).unwrap() });
            }
            primary_key.sort();
            table.primary_key = primary_key.into_iter().map(|(_, column)| column).collect();

            let mut statement =
                connection.prepare("SELECT name, \"unique\", origin FROM pragma_index_list(?1)").unwrap();
            let indexes: Vec<(String, bool, String)> = statement
                .query_map([&name], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for (index, unique, origin) in indexes {
                let columns: Vec<String> = connection
                    .prepare("SELECT name FROM pragma_index_info(?1) ORDER BY seqno")
                    .unwrap()
                    .query_map([&index], |row| row.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                match origin.as_str() {
                    "pk" => {}
                    "u" => {
                        table.unique.insert(columns);
                    }
                    _ => {
                        let sql: String = connection
                            .query_row("SELECT sql FROM sqlite_master WHERE name = ?1", [&index], |row| {
                                row.get(0)
                            })
                            .unwrap();
                        let condition = sql.find(" WHERE ").map(|at| predicate(&sql[at + 7..]));
                        table.indexes.insert(index, Index { unique, columns, predicate: condition });
                    }
                }
            }

            let mut keys: BTreeMap<i64, (Vec<String>, String, Vec<String>)> = BTreeMap::new();
            let mut statement = connection
                .prepare("SELECT id, \"table\", \"from\", \"to\" FROM pragma_foreign_key_list(?1) ORDER BY id, seq")
                .unwrap();
            let mut rows = statement.query([&name]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let key =
                    keys.entry(row.get(0).unwrap()).or_insert_with(|| (vec![], row.get(1).unwrap(), vec![]));
                key.0.push(row.get(2).unwrap());
                key.2.push(row.get(3).unwrap());
            }
            table.foreign_keys = keys.into_values().collect();
            let mut checks: Vec<_> =
                sqlite_checks(&sql).iter().map(|condition| columns_read(condition, &table)).collect();
            checks.sort();
            table.checks = checks;
            schema.insert(name, table);
        }
    }
    schema
}

fn postgres_schema(url: &str) -> Schema {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut schema = Schema::new();
    let columns = client
        .query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text, c.is_nullable::text = 'NO', \
             c.column_default::text, c.collation_name::text \
             FROM information_schema.columns c JOIN information_schema.tables t \
             ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'",
            &[],
        )
        .unwrap();
    for row in columns {
        let data_type: String = row.get(2);
        let collation: Option<String> = row.get(5);
        let kind = match (data_type.as_str(), collation.as_deref()) {
            ("bigint", None) => "INTEGER".to_owned(),
            // Text compares bytes on both engines: SQLite's BINARY is PostgreSQL's "C".
            ("text", Some("C")) => "TEXT".to_owned(),
            ("bytea", None) => "BLOB".to_owned(),
            (other, collation) => format!("{other} (collation {collation:?})"),
        };
        // PostgreSQL spells a text default with its cast (`''::text`); SQLite as written (`''`).
        let default: Option<String> = row.get(4);
        let default = default.map(|text| text.strip_suffix("::text").map_or(text.clone(), str::to_owned));
        let column = Column { kind, not_null: row.get(3), default };
        schema.entry(row.get(0)).or_default().columns.insert(row.get(1), column);
    }
    let constraints = client
        .query(
            "SELECT t.relname::text, c.contype::text, \
               ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.n), \
               COALESCE(f.relname::text, ''), \
               ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum ORDER BY k.n) \
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_namespace s ON s.oid = t.relnamespace LEFT JOIN pg_class f ON f.oid = c.confrelid \
             WHERE s.nspname = current_schema() AND c.contype IN ('p', 'u', 'f', 'c')",
            &[],
        )
        .unwrap();
    for row in constraints {
        let table = schema.entry(row.get(0)).or_default();
        let mut columns: Vec<String> = row.get(2);
        match row.get::<_, String>(1).as_str() {
            "p" => table.primary_key = columns,
            "u" => {
                table.unique.insert(columns);
            }
            "c" => {
                columns.sort();
                table.checks.push(columns);
                table.checks.sort();
            }
            _ => {
                table.foreign_keys.insert((columns, row.get(3), row.get(4)));
            }
        }
    }
    let indexes = client
        .query(
            "SELECT t.relname::text, i.relname::text, x.indisunique, \
               ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum ORDER BY k.n), \
               pg_get_expr(x.indpred, x.indrelid) \
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace s ON s.oid = t.relnamespace \
             WHERE s.nspname = current_schema() AND NOT EXISTS \
               (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u'))",
            &[],
        )
        .unwrap();
    for row in indexes {
        let condition: Option<String> = row.get(4);
        let index =
            Index { unique: row.get(2), columns: row.get(3), predicate: condition.as_deref().map(predicate) };
        schema.entry(row.get(0)).or_default().indexes.insert(row.get(1), index);
    }
    schema
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn the_sqlite_and_postgres_schemas_agree() {
    let dir = tempfile::tempdir().unwrap();
    let settings = SqliteSettings::new(dir.path().join("ocpay.db"));
    drop(SqliteStore::open(&settings).await.expect("a migrated SQLite store"));
    let mut sqlite = sqlite_schema(&[settings.path.clone(), settings.participants_path()]);

    let url = conformance::postgres_scratch_schema(&conformance::postgres_test_url());
    PostgresStore::migrate(&PostgresSettings::new(url.clone())).await.expect("a migrated PostgreSQL schema");
    let mut postgres = tokio::task::spawn_blocking(move || postgres_schema(&url)).await.unwrap();

    for (table, _why) in POSTGRES_ONLY_TABLES {
        assert!(postgres.remove(*table).is_some(), "{table} is still only on PostgreSQL");
    }
    for (table, column, _why) in POSTGRES_ONLY_COLUMNS {
        let columns = &mut postgres.get_mut(*table).expect("the table").columns;
        assert!(columns.remove(*column).is_some(), "{table}.{column} is still only on PostgreSQL");
    }
    for (table, column, _why) in SQLITE_ONLY_FOREIGN_KEYS {
        let keys = &mut sqlite.get_mut(*table).expect("the table").foreign_keys;
        let before = keys.len();
        keys.retain(|(columns, _, _)| columns != &[column.to_string()]);
        assert_eq!(keys.len() + 1, before, "{table}.{column} has a foreign key on SQLite only");
    }

    let names: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    let mut differences = Vec::new();
    for name in names {
        match (sqlite.get(name), postgres.get(name)) {
            (Some(on_sqlite), Some(on_postgres)) if on_sqlite == on_postgres => {}
            (Some(on_sqlite), Some(on_postgres)) => differences
                .push(format!("{name}:\n  SQLite:     {on_sqlite:?}\n  PostgreSQL: {on_postgres:?}")),
            (on_sqlite, _) => differences.push(format!(
                "{name} exists only on {}",
                if on_sqlite.is_some() { "SQLite" } else { "PostgreSQL" }
            )),
        }
    }
    assert!(differences.is_empty(), "the schemas differ:\n{}", differences.join("\n"));
    assert!(sqlite.len() >= 14, "read every table: {:?}", sqlite.keys());
}
