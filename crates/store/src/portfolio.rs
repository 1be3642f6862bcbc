//! The portfolio table: periodic carbon records (provider exports, estimates) beside runs.
//!
//! One row per [`RecordKey`] (provider, account, project, service, region, month, scope,
//! basis, tier). Importing the same month again finds its rows: an identical figure is
//! counted as already stored, a different one (a provider's restatement) is refused unless
//! the caller asks to replace it. Every import is one immediate transaction: all its records
//! or none.

use crate::{to_err, Store, StoreError};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use wattprint_core::portfolio::{Month, PortfolioRecord, RecordKey, RecordSource};

/// What to do with a record whose key is stored with a different figure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnRestated {
    /// Store nothing from this import and list the restated keys (the default).
    #[default]
    Refuse,
    /// Replace the stored figures with the new ones (`import --replace`).
    Replace,
}

/// A record whose key is already stored with another figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Restated {
    pub key: RecordKey,
    /// The stored figure, g CO2e.
    pub stored_g: f64,
    /// Where the stored figure came from.
    pub stored_source: RecordSource,
    /// The new figure, g CO2e.
    pub new_g: f64,
}

/// What [`Store::insert_portfolio`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PortfolioInsert {
    /// Records stored for the first time.
    pub inserted: usize,
    /// Records already stored with the same figure (the same month imported again): left
    /// as they were, not counted twice.
    pub already: usize,
    /// Records stored with another figure: replaced under [`OnRestated::Replace`], else the
    /// reason nothing was written.
    pub restated: Vec<Restated>,
    /// Whether the transaction was committed (false: nothing from this call is stored).
    pub committed: bool,
}

/// Two figures are the same when they differ by less than this fraction (float noise of a
/// unit conversion), g/g.
const SAME_FIGURE_REL: f64 = 1e-9;

impl Store {
    /// Stores `records` in one transaction. Records already stored with the same figure are
    /// counted in [`PortfolioInsert::already`]; records stored with another figure are
    /// listed in [`PortfolioInsert::restated`] and, under [`OnRestated::Refuse`], nothing is
    /// written. A record that fails [`PortfolioRecord::check`] is refused before anything
    /// is written ([`StoreError::BadRecord`]).
    pub fn insert_portfolio(
        &mut self,
        records: &[PortfolioRecord],
        on: OnRestated,
    ) -> Result<PortfolioInsert, StoreError> {
        for r in records {
            r.check().map_err(|message| StoreError::BadRecord {
                key: r.key().to_string(),
                message,
            })?;
        }
        let (path, busy) = (self.path.clone(), self.busy_ms);
        let err = |e| to_err(&path, busy, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut out = PortfolioInsert::default();
        for r in records {
            let k = r.key();
            let month = k.month.to_string();
            let stored: Option<(f64, String)> = tx
                .query_row(
                    "SELECT grams, record_json FROM portfolio WHERE provider = ?1 AND account = ?2
                       AND project = ?3 AND service = ?4 AND region = ?5 AND month = ?6
                       AND scope = ?7 AND basis = ?8 AND tier = ?9",
                    params![
                        k.provider.as_str(),
                        k.account,
                        k.project,
                        k.service,
                        k.region,
                        month,
                        k.scope.as_str(),
                        k.basis.as_str(),
                        k.tier.as_str()
                    ],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()
                .map_err(err)?;
            if let Some((g, json)) = &stored {
                let g = *g;
                if (g - r.grams).abs() <= SAME_FIGURE_REL * g.abs().max(r.grams.abs()) {
                    out.already += 1;
                    continue;
                }
                let stored_source = serde_json::from_str::<PortfolioRecord>(json)
                    .map(|s| s.source)
                    .unwrap_or_default();
                out.restated.push(Restated {
                    key: k.clone(),
                    stored_g: g,
                    stored_source,
                    new_g: r.grams,
                });
                if on == OnRestated::Refuse {
                    continue;
                }
            }
            let json = serde_json::to_string(r).map_err(|e| StoreError::Sql {
                path: path.clone(),
                message: format!("cannot encode portfolio record {k}: {e}"),
            })?;
            tx.execute(
                "INSERT INTO portfolio (provider, account, project, service, region, month,
                   scope, basis, tier, grams, model_version, source_file, source_line,
                   record_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT (provider, account, project, service, region, month, scope, basis,
                   tier)
                 DO UPDATE SET grams = excluded.grams, model_version = excluded.model_version,
                   source_file = excluded.source_file, source_line = excluded.source_line,
                   record_json = excluded.record_json",
                params![
                    k.provider.as_str(),
                    k.account,
                    k.project,
                    k.service,
                    k.region,
                    month,
                    k.scope.as_str(),
                    k.basis.as_str(),
                    k.tier.as_str(),
                    r.grams,
                    r.model_version,
                    r.source.file,
                    i64::try_from(r.source.line).unwrap_or(i64::MAX),
                    json
                ],
            )
            .map_err(err)?;
            if stored.is_none() {
                out.inserted += 1;
            }
        }
        if on == OnRestated::Refuse && !out.restated.is_empty() {
            tx.rollback().map_err(err)?;
            out.inserted = 0;
            return Ok(out);
        }
        tx.commit().map_err(err)?;
        out.committed = true;
        Ok(out)
    }

    /// The stored records whose month is within `from..=to` (either end open when `None`),
    /// ordered by month, provider, account, project, service, region. A history older than
    /// the portfolio table has none. A row that cannot be decoded is an error naming it.
    pub fn portfolio(
        &self,
        from: Option<Month>,
        to: Option<Month>,
    ) -> Result<Vec<PortfolioRecord>, StoreError> {
        let err = |e| to_err(&self.path, self.busy_ms, e);
        let has_table: bool = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'portfolio'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(err)?
            > 0;
        if !has_table {
            return Ok(Vec::new());
        }
        let from = from.map(|m| m.to_string()).unwrap_or_default();
        let to = to
            .map(|m| m.to_string())
            .unwrap_or_else(|| "9999-99".into());
        let mut stmt = self
            .conn
            .prepare(
                "SELECT record_json, provider, month, source_file, source_line FROM portfolio
                 WHERE month >= ?1 AND month <= ?2
                 ORDER BY month, provider, account, project, service, region, scope, basis, tier",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(params![from, to], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .map_err(err)?;
        let mut out = Vec::new();
        for row in rows {
            let (json, provider, month, file, line) = row.map_err(err)?;
            let r: PortfolioRecord =
                serde_json::from_str(&json).map_err(|e| StoreError::BadRow {
                    id: format!("portfolio {provider} {month} ({file} line {line})"),
                    message: e.to_string(),
                })?;
            out.push(r);
        }
        Ok(out)
    }

    /// Number of stored portfolio records (0 for a history older than the table).
    pub fn portfolio_count(&self) -> Result<u64, StoreError> {
        Ok(self.portfolio(None, None)?.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use wattprint_core::portfolio::{Basis, Provider, Scope, Tier};

    fn rec(month: u8, scope: Scope, basis: Basis, kg: f64) -> PortfolioRecord {
        PortfolioRecord {
            provider: Provider::Gcp,
            account: "0A1B2C-3D4E5F-6A7B8C".into(),
            project: Some("ml-prod".into()),
            service: "Compute Engine".into(),
            region: "europe-west1".into(),
            month: Month::new(2026, month).unwrap(),
            scope,
            basis,
            grams: kg * 1000.0,
            low_g: None,
            high_g: None,
            tier: Tier::ProviderReported,
            energy_j: None,
            model_version: "12".into(),
            labels: BTreeMap::new(),
            source: RecordSource {
                file: "gcp.csv".into(),
                line: 2,
                format: "gcp-carbon".into(),
            },
            note: None,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("h.sqlite")).unwrap();
        (d, s)
    }

    #[test]
    fn a_month_imported_twice_is_recognised_not_doubled() {
        let (_d, mut s) = store();
        let rs = vec![
            rec(1, Scope::Scope2, Basis::Location, 12.5),
            rec(1, Scope::Scope2, Basis::Market, 3.0),
            rec(1, Scope::Scope1, Basis::Both, 0.25),
        ];
        let first = s.insert_portfolio(&rs, OnRestated::Refuse).unwrap();
        assert_eq!(
            (first.inserted, first.already, first.committed),
            (3, 0, true)
        );
        let again = s.insert_portfolio(&rs, OnRestated::Refuse).unwrap();
        assert_eq!(
            (again.inserted, again.already, again.committed),
            (0, 3, true)
        );
        let stored = s.portfolio(None, None).unwrap();
        assert_eq!(stored.len(), 3);
        let total_g: f64 = stored.iter().map(|r| r.grams).sum();
        assert_eq!(total_g, 15_750.0);
    }

    #[test]
    fn a_restated_month_is_refused_whole_unless_replaced() {
        let (_d, mut s) = store();
        s.insert_portfolio(
            &[rec(1, Scope::Scope2, Basis::Location, 12.5)],
            OnRestated::Refuse,
        )
        .unwrap();
        let batch = vec![
            rec(2, Scope::Scope2, Basis::Location, 7.0),
            rec(1, Scope::Scope2, Basis::Location, 13.0),
        ];
        let refused = s.insert_portfolio(&batch, OnRestated::Refuse).unwrap();
        assert!(!refused.committed);
        assert_eq!(refused.inserted, 0);
        assert_eq!(refused.restated.len(), 1);
        assert_eq!(refused.restated[0].stored_g, 12_500.0);
        assert_eq!(refused.restated[0].new_g, 13_000.0);
        assert_eq!(refused.restated[0].stored_source.file, "gcp.csv");
        // Nothing half-imported: February is not stored either.
        assert_eq!(s.portfolio(None, None).unwrap().len(), 1);
        let replaced = s.insert_portfolio(&batch, OnRestated::Replace).unwrap();
        assert!(replaced.committed);
        assert_eq!(replaced.inserted, 1);
        let stored = s.portfolio(None, None).unwrap();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].grams, 13_000.0);
    }

    #[test]
    fn months_filter_the_portfolio_and_a_bad_record_stores_nothing() {
        let (_d, mut s) = store();
        let rs: Vec<_> = (1..=4)
            .map(|m| rec(m, Scope::Scope2, Basis::Location, 1.0))
            .collect();
        s.insert_portfolio(&rs, OnRestated::Refuse).unwrap();
        let feb_mar = s
            .portfolio(Month::new(2026, 2), Month::new(2026, 3))
            .unwrap();
        assert_eq!(
            feb_mar.iter().map(|r| r.month.month).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let mut bad = rec(5, Scope::Scope2, Basis::Location, 1.0);
        bad.grams = f64::NAN;
        let e = s
            .insert_portfolio(
                &[rec(6, Scope::Scope3, Basis::Both, 1.0), bad],
                OnRestated::Refuse,
            )
            .unwrap_err();
        assert!(e.to_string().contains("grams"), "{e}");
        assert_eq!(s.portfolio_count().unwrap(), 4);
    }
}
