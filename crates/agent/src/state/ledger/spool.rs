//! The ledger's part of the agent's spool: what a restart must not lose (spans waiting for
//! attribution with the energy settled to them so far, per-label totals, idle energy, what
//! was lost), in Unix time so that it maps onto the next process's meter clock.

use super::{LabelTotals, Pending, RequestLedger};
use crate::spool::{LedgerSnapshot, SpooledLabelTotals, SpooledSpan};
use wattprint_core::requests::Span;

impl RequestLedger {
    /// The ledger's snapshot; at most `max_pending` spans (the newest), the others counted
    /// in the returned number.
    pub fn snapshot(&self, max_pending: usize) -> (LedgerSnapshot, u64) {
        let skip = self.pending.len().saturating_sub(max_pending);
        let pending = self
            .pending
            .iter()
            .skip(skip)
            .map(|p| SpooledSpan {
                start_unix_s: self.unix_of(p.span.start_s),
                end_unix_s: self.unix_of(p.span.end_s),
                tokens: p.span.tokens,
                labels: self.labels.get(p.label).clone(),
                energy_j: p.energy_j,
                id: p.id,
            })
            .collect();
        let totals = self
            .label_totals()
            .map(|(l, t)| SpooledLabelTotals {
                labels: l.clone(),
                requests: t.requests,
                tokens: t.tokens,
                energy_j: t.energy_j,
                carbon_g: t.carbon_g,
            })
            .collect();
        let l = &self.losses;
        (
            LedgerSnapshot {
                pending,
                totals,
                idle_j: self.idle_j,
                spans_received: self.spans_received,
                spans_dropped: l.spans_dropped,
                spans_invalid: l.spans_invalid,
                spans_late: l.spans_late,
                late_span_s: l.late_span_s,
                recent_rotated: l.recent_rotated,
                label_sets_overflowed: l.label_sets_overflowed,
            },
            skip as u64,
        )
    }

    /// Take a previous process's snapshot over (call on a fresh ledger, before any span):
    /// counters continue from it, pending spans wait again, mapped onto this meter's clock.
    /// The time between the snapshot and this start has no samples: no energy is settled to
    /// it.
    pub fn restore(&mut self, s: &LedgerSnapshot) {
        for t in &s.totals {
            let set = self.labels.intern(&t.labels).set;
            if self.totals.len() <= set.0 {
                self.totals.resize(set.0 + 1, LabelTotals::default());
            }
            let x = &mut self.totals[set.0];
            x.requests += t.requests;
            x.tokens += t.tokens;
            x.energy_j += t.energy_j;
            x.carbon_g += t.carbon_g;
        }
        for p in &s.pending {
            let set = self.labels.intern(&p.labels).set;
            self.pending.push_back(Pending {
                span: Span {
                    start_s: p.start_unix_s - self.unix_at_epoch_s,
                    end_s: p.end_unix_s - self.unix_at_epoch_s,
                    tokens: p.tokens,
                },
                label: set,
                energy_j: p.energy_j,
                id: p.id,
            });
        }
        self.idle_j += s.idle_j;
        self.spans_received += s.spans_received;
        let l = &mut self.losses;
        l.spans_dropped += s.spans_dropped;
        l.spans_invalid += s.spans_invalid;
        l.spans_late += s.spans_late;
        l.late_span_s += s.late_span_s;
        l.recent_rotated += s.recent_rotated;
        l.label_sets_overflowed += s.label_sets_overflowed;
    }
}
