//! The journal's two SQL backends behind one small interface: SQLite (a study file,
//! the embedded default) and PostgreSQL (a study shared by many processes on many
//! machines). Statements are written once, with SQLite's `?N` placeholders, which are
//! rewritten to `$N` for PostgreSQL; values travel as [`Val`].

#[cfg(feature = "postgres")]
use std::sync::Mutex;

use rusqlite::Connection;

use crate::SearchError;

/// One SQL value, typed so that PostgreSQL gets the column's type even for NULL.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    /// A 64-bit integer (`INTEGER` / `BIGINT`).
    Int(Option<i64>),
    /// A double (`REAL` / `DOUBLE PRECISION`).
    Real(Option<f64>),
    /// Text.
    Text(Option<String>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::Real(Some(v))
    }
}
impl From<Option<f64>> for Val {
    fn from(v: Option<f64>) -> Self {
        Val::Real(v)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::Text(v.map(str::to_string))
    }
}

impl Val {
    pub(crate) fn int(&self) -> Option<i64> {
        match self {
            Val::Int(v) => *v,
            Val::Real(v) => v.map(|f| f as i64),
            Val::Text(v) => v.as_deref().and_then(|s| s.parse().ok()),
        }
    }
    pub(crate) fn real(&self) -> Option<f64> {
        match self {
            Val::Int(v) => v.map(|i| i as f64),
            Val::Real(v) => *v,
            Val::Text(v) => v.as_deref().and_then(|s| s.parse().ok()),
        }
    }
    pub(crate) fn text(&self) -> Option<String> {
        match self {
            Val::Text(v) => v.clone(),
            Val::Int(v) => v.map(|i| i.to_string()),
            Val::Real(v) => v.map(|f| f.to_string()),
        }
    }
}

/// One result row.
pub(crate) type Row = Vec<Val>;

/// A statement and its parameters, for [`Db::transaction`].
pub(crate) type Stmt<'a> = (&'a str, Vec<Val>);

/// A connection to either backend.
pub(crate) enum Db {
    /// A study file.
    Sqlite(Connection),
    /// A PostgreSQL database, the study in its own schema (the connection's search path).
    #[cfg(feature = "postgres")]
    Postgres(Mutex<postgres::Client>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Sqlite(_) => "Db::Sqlite",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => "Db::Postgres",
        })
    }
}

/// `?N` placeholders as PostgreSQL's `$N`.
#[cfg(feature = "postgres")]
fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn sqlite_params(params: &[Val]) -> Vec<rusqlite::types::Value> {
    use rusqlite::types::Value as V;
    params
        .iter()
        .map(|p| match p {
            Val::Int(Some(i)) => V::Integer(*i),
            Val::Real(Some(f)) => V::Real(*f),
            Val::Text(Some(s)) => V::Text(s.clone()),
            _ => V::Null,
        })
        .collect()
}

#[cfg(feature = "postgres")]
pub(crate) fn pg_params(params: &[Val]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                Val::Int(v) => Box::new(*v),
                Val::Real(v) => Box::new(*v),
                Val::Text(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

fn sqlite_row(r: &rusqlite::Row<'_>, n: usize) -> rusqlite::Result<Row> {
    use rusqlite::types::ValueRef as V;
    (0..n)
        .map(|i| {
            Ok(match r.get_ref(i)? {
                V::Null => Val::Text(None),
                V::Integer(v) => Val::Int(Some(v)),
                V::Real(v) => Val::Real(Some(v)),
                V::Text(t) => Val::Text(Some(String::from_utf8_lossy(t).into_owned())),
                V::Blob(b) => Val::Text(Some(String::from_utf8_lossy(b).into_owned())),
            })
        })
        .collect()
}

#[cfg(feature = "postgres")]
fn pg_row(r: &postgres::Row) -> Result<Row, postgres::Error> {
    use postgres::types::Type;
    (0..r.len())
        .map(|i| {
            let ty = r.columns()[i].type_();
            Ok(if *ty == Type::INT8 {
                Val::Int(r.try_get::<_, Option<i64>>(i)?)
            } else if *ty == Type::INT4 {
                Val::Int(r.try_get::<_, Option<i32>>(i)?.map(i64::from))
            } else if *ty == Type::FLOAT8 {
                Val::Real(r.try_get::<_, Option<f64>>(i)?)
            } else if *ty == Type::BOOL {
                Val::Int(r.try_get::<_, Option<bool>>(i)?.map(i64::from))
            } else {
                Val::Text(r.try_get::<_, Option<String>>(i)?)
            })
        })
        .collect()
}

impl Db {
    /// Runs one statement; returns the rows it changed.
    pub(crate) fn exec(&self, sql: &str, params: &[Val], at: &str) -> Result<u64, SearchError> {
        match self {
            Db::Sqlite(c) => c
                .execute(sql, rusqlite::params_from_iter(sqlite_params(params)))
                .map(|n| n as u64)
                .map_err(|source| SearchError::Db { path: at.into(), source }),
            #[cfg(feature = "postgres")]
            Db::Postgres(m) => {
                let p = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
                lock(m).execute(pg_sql(sql).as_str(), &refs).map_err(|e| pg_err(at, e))
            }
        }
    }

    /// Runs a query; returns every row.
    pub(crate) fn query(&self, sql: &str, params: &[Val], at: &str) -> Result<Vec<Row>, SearchError> {
        match self {
            Db::Sqlite(c) => {
                let db = |source| SearchError::Db { path: at.into(), source };
                let mut stmt = c.prepare(sql).map_err(db)?;
                let n = stmt.column_count();
                stmt.query_map(rusqlite::params_from_iter(sqlite_params(params)), |r| sqlite_row(r, n))
                    .map_err(db)?
                    .collect::<Result<_, _>>()
                    .map_err(db)
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(m) => {
                let p = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
                let rows = lock(m).query(pg_sql(sql).as_str(), &refs).map_err(|e| pg_err(at, e))?;
                rows.iter().map(pg_row).collect::<Result<_, _>>().map_err(|e| pg_err(at, e))
            }
        }
    }

    /// The first row of a query, if any.
    pub(crate) fn query_one(&self, sql: &str, params: &[Val], at: &str) -> Result<Option<Row>, SearchError> {
        Ok(self.query(sql, params, at)?.into_iter().next())
    }

    /// Runs statements in one transaction; returns the rows each changed. With
    /// `first_must_change`, a first statement that changes no row rolls the whole
    /// transaction back (its count, 0, tells the caller).
    pub(crate) fn transaction(
        &mut self,
        stmts: &[Stmt<'_>],
        first_must_change: bool,
        at: &str,
    ) -> Result<Vec<u64>, SearchError> {
        match self {
            Db::Sqlite(c) => {
                let db = |source| SearchError::Db { path: at.into(), source };
                let tx = c.transaction().map_err(db)?;
                let mut counts = Vec::with_capacity(stmts.len());
                for (sql, params) in stmts {
                    counts.push(tx.execute(sql, rusqlite::params_from_iter(sqlite_params(params))).map_err(db)? as u64);
                    if first_must_change && counts == [0] {
                        return Ok(counts); // dropped: rolled back
                    }
                }
                tx.commit().map_err(db)?;
                Ok(counts)
            }
            #[cfg(feature = "postgres")]
            Db::Postgres(m) => {
                let mut client = lock(m);
                let mut tx = client.transaction().map_err(|e| pg_err(at, e))?;
                let mut counts = Vec::with_capacity(stmts.len());
                for (sql, params) in stmts {
                    let p = pg_params(params);
                    let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = p.iter().map(|b| b.as_ref()).collect();
                    counts.push(tx.execute(pg_sql(sql).as_str(), &refs).map_err(|e| pg_err(at, e))?);
                    if first_must_change && counts == [0] {
                        return Ok(counts); // dropped: rolled back
                    }
                }
                tx.commit().map_err(|e| pg_err(at, e))?;
                Ok(counts)
            }
        }
    }

    /// Runs several `;`-separated statements without parameters (schemas).
    pub(crate) fn batch(&self, sql: &str, at: &str) -> Result<(), SearchError> {
        match self {
            Db::Sqlite(c) => c.execute_batch(sql).map_err(|source| SearchError::Db { path: at.into(), source }),
            #[cfg(feature = "postgres")]
            Db::Postgres(m) => lock(m).batch_execute(sql).map_err(|e| pg_err(at, e)),
        }
    }

    /// Whether a table exists (in the study's schema for PostgreSQL).
    pub(crate) fn has_table(&self, table: &str, at: &str) -> Result<bool, SearchError> {
        let sql = match self {
            Db::Sqlite(_) => "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1",
            #[cfg(feature = "postgres")]
            Db::Postgres(_) => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?1"
            }
        };
        Ok(self.query_one(sql, &[table.into()], at)?.is_some())
    }

    /// Whether this is the PostgreSQL backend.
    pub(crate) fn is_postgres(&self) -> bool {
        !matches!(self, Db::Sqlite(_))
    }
}

#[cfg(feature = "postgres")]
/// The client, even after a panic of another holder (its state is a connection only).
pub(crate) fn lock(m: &Mutex<postgres::Client>) -> std::sync::MutexGuard<'_, postgres::Client> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(feature = "postgres")]
/// A PostgreSQL error naming the study it happened on.
pub(crate) fn pg_err(at: &str, source: postgres::Error) -> SearchError {
    SearchError::Postgres { study: at.to_string(), source }
}

#[cfg(all(test, feature = "postgres"))]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            pg_sql("UPDATE t SET a = ?2 WHERE id = ?1 AND b = '?'"),
            "UPDATE t SET a = $2 WHERE id = $1 AND b = '?'"
        );
    }
}
