//! The windows table's part of the agent's spool: the open windows and the ended windows'
//! totals, restored by a restarted agent.

use super::{OpenWindow, WindowTable};
use crate::spool::SpooledWindowTotals;

impl WindowTable {
    /// The open windows, by id (for the spool).
    pub fn open_iter(&self) -> impl Iterator<Item = (u64, &OpenWindow)> {
        self.open.iter().map(|(id, w)| (*id, w))
    }

    /// The ended windows' totals and the overflow count, for the spool.
    pub fn totals_snapshot(&self) -> (Vec<SpooledWindowTotals>, u64) {
        (
            self.totals
                .iter()
                .map(|(name, t)| SpooledWindowTotals {
                    name: name.clone(),
                    ended: t.ended,
                    energy_j: t.energy_j,
                    carbon_g: t.carbon_g,
                })
                .collect(),
            self.names_overflowed,
        )
    }

    /// Continue from a previous process's totals (on a fresh table).
    pub fn restore_totals(&mut self, totals: &[SpooledWindowTotals], names_overflowed: u64) {
        for t in totals {
            let x = self.totals.entry(t.name.clone()).or_default();
            x.ended += t.ended;
            x.energy_j += t.energy_j;
            x.carbon_g += t.carbon_g;
        }
        self.names_overflowed += names_overflowed;
    }
}
