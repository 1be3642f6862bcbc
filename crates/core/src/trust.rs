//! Evidence before trust: whether a measured domain's energy over a window can be true.
//!
//! A counter that reads but never advances (a perf `energy-psys` in a VM guest, a powercap
//! zone frozen by firmware) and a counter whose implied power no hardware reaches are both
//! common enough that a tool promising honest numbers must check every window against what
//! it reads anyway: the window's length and the machine's busy CPU time (`/proc/stat`).
//!
//! The rules ([`judge`]):
//!
//! - **Implausible**: negative or non-finite energy, or more energy than
//!   [`PLAUSIBLE_MAX_FACTOR`] x the domain's maximum power x (window + [`INTERVAL_SLACK_S`]) (powercap's largest
//!   `constraint_*_max_power_uw`). The CPU's TDP x sockets is deliberately not a bound: in a
//!   VM, `/proc/cpuinfo` describes the guest's vCPUs while a passed-through RAPL package
//!   counts the host's whole socket, and unknown CPUs get a per-thread default TDP.
//! - **Stuck, physics alone**: a package, psys or dram domain always draws power (an idle
//!   package is watts, idle DRAM a watt or more per DIMM): zero advance over a window of at
//!   least [`STUCK_MIN_WINDOW_S`] (100 x RAPL's update period of about 1 ms) is impossible even
//!   on an idle machine.
//! - **Stuck, with evidence**: a core (pp0), uncore or GPU domain can be near zero when idle,
//!   so zero advance makes it stuck only when the machine was busy for at least
//!   [`BUSY_EVIDENCE_CPU_S`] of CPU time over the window.
//! - Modelled domains are never judged: they are the fallback.

use crate::domain::{DomainDesc, DomainKind, Method};

/// The shortest window over which a package, psys or dram counter that did not advance is
/// stuck, s: 100 x the RAPL energy status update period of about 1 ms (Intel SDM vol. 3B,
/// 15.10.1, "RAPL Interfaces"; measured at about 1 ms by Khan et al., "RAPL in Action",
/// ACM TOMPECS 3(2), 2018). At a floor of 0.1 W, 0.1 s is 0.01 J, over 600 counter units of
/// 15.3 µJ: a live counter cannot stand still that long.
pub const STUCK_MIN_WINDOW_S: f64 = 0.1;

/// Busy CPU time over a window that makes a non-advancing core or GPU domain stuck, CPU-s:
/// 10 `USER_HZ` ticks of 10 ms (`/proc/stat`'s unit, `TICK_S`), far above the tick rounding
/// of one reading per CPU.
pub const BUSY_EVIDENCE_CPU_S: f64 = 0.1;

/// How far above its maximum power a domain may seem to draw before the reading is
/// implausible. Intel's PL2 (short-term limit) reaches about 1.25 x PL1 on servers and about
/// 2 x on desktop parts (Intel 12th-gen datasheet vol. 1: 125 W PL1, 241 W PL2); PL4 spikes
/// last microseconds and vanish in any window a meter reads. 3 x leaves room for all of them
/// and for short windows, while a counter jump (a wrap missed, a reset read as a wrap) is far
/// beyond it.
pub const PLAUSIBLE_MAX_FACTOR: f64 = 3.0;

/// What a window's energy says about a domain.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Nothing contradicts the reading.
    Ok,
    /// The domain did not advance where it must have: the reason names the evidence.
    Stuck(String),
    /// The implied power is outside physical bounds: the reason gives both.
    Implausible(String),
    /// No value over the whole window (a root-only zone, a vanished file): the reason.
    Unreadable(String),
}

impl Verdict {
    /// `ok`, `stuck` or `implausible`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Stuck(_) => "stuck",
            Verdict::Implausible(_) => "implausible",
            Verdict::Unreadable(_) => "unreadable",
        }
    }

    /// The reason, for a rejection.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Ok => None,
            Verdict::Stuck(r) | Verdict::Implausible(r) | Verdict::Unreadable(r) => Some(r),
        }
    }
}

/// One domain's reading over one window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DomainWindow {
    pub kind: DomainKind,
    pub method: Method,
    /// Energy over the window, J.
    pub energy_j: f64,
    /// The domain's maximum power when the hardware declares it (powercap constraint), W.
    pub max_power_w: Option<f64>,
}

/// What else was read over the window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Evidence {
    /// Window length, s.
    pub window_s: f64,
    /// The machine's busy CPU time over the window (all CPUs), CPU-s, when read.
    pub machine_busy_cpu_s: Option<f64>,
}

/// Whether a domain of `kind` always draws power, so that standing still is impossible.
pub fn always_draws_power(kind: DomainKind) -> bool {
    matches!(
        kind,
        DomainKind::CpuPackage | DomainKind::Psys | DomainKind::Dram | DomainKind::Node
    )
}

/// Judge one domain over one window (pure; see the module docs for the rules).
pub fn judge(d: &DomainWindow, e: &Evidence) -> Verdict {
    if d.method == Method::Model {
        return Verdict::Ok;
    }
    if !d.energy_j.is_finite() || d.energy_j < 0.0 {
        return Verdict::Implausible(format!(
            "read {} J over {:.3} s: energy cannot be negative",
            d.energy_j, e.window_s
        ));
    }
    if let Some(why) = implausible_interval(d.energy_j, e.window_s, d.max_power_w) {
        return Verdict::Implausible(why);
    }
    if d.energy_j > 0.0 {
        return Verdict::Ok;
    }
    if always_draws_power(d.kind) && e.window_s >= STUCK_MIN_WINDOW_S {
        return Verdict::Stuck(format!(
            "did not advance over {:.3} s; a {} domain always draws power (idle is watts), \
             so its counter is dead",
            e.window_s, d.kind
        ));
    }
    match e.machine_busy_cpu_s {
        Some(b) if b >= BUSY_EVIDENCE_CPU_S => Verdict::Stuck(format!(
            "did not advance over {:.3} s while the machine was busy for {b:.2} CPU-s",
            e.window_s
        )),
        _ => Verdict::Ok,
    }
}

/// Slack added to a read interval before bounding its energy, s: 10 x RAPL's ~1 ms update
/// period, so that two reads microseconds apart that straddle one counter update (a whole
/// update's energy in almost no time) are not taken for a jump.
pub const INTERVAL_SLACK_S: f64 = 0.01;

/// Whether the energy a counter advanced between two reads `dt_s` apart is beyond physics:
/// above [`PLAUSIBLE_MAX_FACTOR`] x `max_power_w` x (`dt_s` + [`INTERVAL_SLACK_S`]). Catches
/// a jump larger than the wrap range within one guard period (read as a wrap, it implies an
/// impossible power) and firmware glitches. The reason, when it is.
pub fn implausible_interval(energy_j: f64, dt_s: f64, max_power_w: Option<f64>) -> Option<String> {
    let max = max_power_w.filter(|m| *m > 0.0 && m.is_finite())?;
    let bound_j = max * PLAUSIBLE_MAX_FACTOR * (dt_s.max(0.0) + INTERVAL_SLACK_S);
    (energy_j > bound_j).then(|| {
        format!(
            "implausible: {energy_j:.3} J in {dt_s:.3} s, above {PLAUSIBLE_MAX_FACTOR} x the \
             domain's maximum of {max:.1} W"
        )
    })
}

/// A rejected domain and the domains counted in its place.
#[derive(Clone, Debug, PartialEq)]
pub struct Swap {
    /// Index of the rejected domain.
    pub rejected: usize,
    /// Indices of the standby domains now counted for its scope (empty: none covers it).
    pub replaced_by: Vec<usize>,
}

/// What [`plan_swaps`] decided.
#[derive(Clone, Debug, PartialEq)]
pub struct SwapPlan {
    /// Per domain: whether it now enters the total.
    pub counted: Vec<bool>,
    pub swaps: Vec<Swap>,
    /// Measured domains trusted but no longer counted because a model domain swapped in for a
    /// rejected one covers them too (the model's CPU domain is every socket's).
    pub covered: Vec<usize>,
}

/// The model domain kinds that cover a rejected measured domain of `kind`: psys is the whole
/// platform (CPU and memory), a package or its parts the CPU, dram the memory.
pub fn model_scope(kind: DomainKind) -> &'static [DomainKind] {
    match kind {
        DomainKind::Psys => &[DomainKind::CpuModel, DomainKind::MemoryModel],
        DomainKind::CpuPackage | DomainKind::CpuCore | DomainKind::CpuUncore => {
            &[DomainKind::CpuModel]
        }
        DomainKind::Dram => &[DomainKind::MemoryModel],
        _ => &[],
    }
}

/// The measured kinds a model domain of `kind` stands for (counted once: the model's domains
/// cover every socket).
pub fn covered_by(kind: DomainKind) -> &'static [DomainKind] {
    match kind {
        DomainKind::CpuModel => &[
            DomainKind::CpuPackage,
            DomainKind::CpuCore,
            DomainKind::CpuUncore,
            DomainKind::Psys,
        ],
        DomainKind::MemoryModel => &[DomainKind::Dram, DomainKind::Psys],
        _ => &[],
    }
}

/// Decide which domains count after rejecting those whose verdict is not [`Verdict::Ok`]
/// (pure). `domains[k].counted_in_total` is the choice before any rejection; standby domains
/// (`standby[k]`) start uncounted.
///
/// Each counted, non-standby domain that is rejected stops counting and is replaced by, in
/// order: the standby domain of the same name and kind whose own verdict is ok (powercap
/// behind perf); else the standby model domains of its scope ([`model_scope`]); else nothing.
/// A model domain swapped in un-counts every other measured domain of the kinds it covers, so
/// no joule is counted twice. Standby domains themselves are never "rejected": a bad one is
/// just not used.
pub fn plan_swaps(domains: &[DomainDesc], standby: &[bool], verdicts: &[Verdict]) -> SwapPlan {
    let is_standby = |k: usize| standby.get(k).copied().unwrap_or(false);
    let ok = |k: usize| verdicts.get(k).is_none_or(|v| *v == Verdict::Ok);
    let mut counted: Vec<bool> = (0..domains.len())
        .map(|k| domains[k].counted_in_total && !is_standby(k))
        .collect();
    let mut swaps = Vec::new();
    for r in 0..domains.len() {
        if !counted[r] || ok(r) {
            continue;
        }
        counted[r] = false;
        let d = &domains[r];
        let same = (0..domains.len()).find(|&k| {
            is_standby(k)
                && ok(k)
                && domains[k].name == d.name
                && domains[k].kind == d.kind
                && domains[k].method != Method::Model
        });
        let replaced_by: Vec<usize> = match same {
            Some(k) => vec![k],
            None => model_scope(d.kind)
                .iter()
                .filter_map(|mk| {
                    (0..domains.len()).find(|&k| is_standby(k) && domains[k].kind == *mk)
                })
                .collect(),
        };
        for &k in &replaced_by {
            counted[k] = true;
        }
        swaps.push(Swap {
            rejected: r,
            replaced_by,
        });
    }
    let mut covered = Vec::new();
    for m in 0..domains.len() {
        if !(counted[m] && is_standby(m) && domains[m].method == Method::Model) {
            continue;
        }
        for k in 0..domains.len() {
            if counted[k]
                && !is_standby(k)
                && domains[k].method != Method::Model
                && covered_by(domains[m].kind).contains(&domains[k].kind)
            {
                counted[k] = false;
                covered.push(k);
            }
        }
    }
    SwapPlan {
        counted,
        swaps,
        covered,
    }
}

/// Which domains count in a live view `window_s` into a run (pure): each domain judged on
/// its energy so far (`energy_j`, meter order) with no CPU-time evidence, then
/// [`plan_swaps`]. A dead counter is swapped for its standby as soon as the run has lasted
/// [`STUCK_MIN_WINDOW_S`], so the live line agrees with the final report.
pub fn live_counted(
    domains: &[DomainDesc],
    standby: &[bool],
    energy_j: &[f64],
    window_s: f64,
) -> Vec<bool> {
    let ev = Evidence {
        window_s,
        machine_busy_cpu_s: None,
    };
    let verdicts: Vec<Verdict> = domains
        .iter()
        .enumerate()
        .map(|(k, d)| {
            judge(
                &DomainWindow {
                    kind: d.kind,
                    method: d.method,
                    energy_j: energy_j.get(k).copied().unwrap_or(0.0),
                    max_power_w: None,
                },
                &ev,
            )
        })
        .collect();
    plan_swaps(domains, standby, &verdicts).counted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(kind: DomainKind, energy_j: f64, max: Option<f64>) -> DomainWindow {
        DomainWindow {
            kind,
            method: Method::Counter,
            energy_j,
            max_power_w: max,
        }
    }

    fn ev(window_s: f64, busy: Option<f64>) -> Evidence {
        Evidence {
            window_s,
            machine_busy_cpu_s: busy,
        }
    }

    const ALWAYS: [DomainKind; 4] = [
        DomainKind::CpuPackage,
        DomainKind::Psys,
        DomainKind::Dram,
        DomainKind::Node,
    ];
    const NEEDS_EVIDENCE: [DomainKind; 4] = [
        DomainKind::CpuCore,
        DomainKind::CpuUncore,
        DomainKind::Gpu,
        DomainKind::Accelerator,
    ];

    fn dom(name: &str, kind: DomainKind, method: Method, counted: bool) -> DomainDesc {
        DomainDesc {
            name: name.into(),
            kind,
            source: "t".into(),
            method,
            counted_in_total: counted,
            device: None,
        }
    }

    fn stuck() -> Verdict {
        Verdict::Stuck("x".into())
    }

    /// perf psys (counted alone), then standby model cpu + memory.
    fn psys_and_model() -> Vec<DomainDesc> {
        vec![
            dom("psys", DomainKind::Psys, Method::Counter, true),
            dom("cpu-model", DomainKind::CpuModel, Method::Model, true),
            dom("memory-model", DomainKind::MemoryModel, Method::Model, true),
        ]
    }

    #[test]
    fn a_rejected_psys_is_replaced_by_the_whole_model() {
        let p = plan_swaps(
            &psys_and_model(),
            &[false, true, true],
            &[stuck(), Verdict::Ok, Verdict::Ok],
        );
        assert_eq!(p.counted, vec![false, true, true]);
        assert_eq!(
            p.swaps,
            vec![Swap {
                rejected: 0,
                replaced_by: vec![1, 2]
            }]
        );
        assert!(p.covered.is_empty());
    }

    #[test]
    fn nothing_rejected_changes_nothing_and_standby_stays_out() {
        let p = plan_swaps(
            &psys_and_model(),
            &[false, true, true],
            &[Verdict::Ok, Verdict::Ok, Verdict::Ok],
        );
        assert_eq!(p.counted, vec![true, false, false]);
        assert!(p.swaps.is_empty() && p.covered.is_empty());
        // Missing verdicts count as ok.
        let p = plan_swaps(&psys_and_model(), &[false, true, true], &[]);
        assert_eq!(p.counted, vec![true, false, false]);
    }

    #[test]
    fn the_same_zone_from_powercap_is_preferred_to_the_model() {
        let d = vec![
            dom("package-0", DomainKind::CpuPackage, Method::Counter, true),
            dom("dram-0", DomainKind::Dram, Method::Counter, true),
            dom("package-0", DomainKind::CpuPackage, Method::Counter, true),
            dom("dram-0", DomainKind::Dram, Method::Counter, true),
            dom("cpu-model", DomainKind::CpuModel, Method::Model, true),
            dom("memory-model", DomainKind::MemoryModel, Method::Model, true),
        ];
        let sb = [false, false, true, true, true, true];
        let ok = Verdict::Ok;
        let p = plan_swaps(
            &d,
            &sb,
            &[
                stuck(),
                ok.clone(),
                ok.clone(),
                ok.clone(),
                ok.clone(),
                ok.clone(),
            ],
        );
        assert_eq!(p.counted, vec![false, true, true, false, false, false]);
        assert_eq!(p.swaps[0].replaced_by, vec![2]);
        // The powercap package is stuck too: the model takes the CPU scope only.
        let p = plan_swaps(
            &d,
            &sb,
            &[stuck(), ok.clone(), stuck(), ok.clone(), ok.clone(), ok],
        );
        assert_eq!(p.counted, vec![false, true, false, false, true, false]);
        assert_eq!(p.swaps[0].replaced_by, vec![4]);
    }

    #[test]
    fn a_model_swapped_in_covers_every_socket_once() {
        let d = vec![
            dom("package-0", DomainKind::CpuPackage, Method::Counter, true),
            dom("package-1", DomainKind::CpuPackage, Method::Counter, true),
            dom("dram-0", DomainKind::Dram, Method::Counter, true),
            dom("cpu-model", DomainKind::CpuModel, Method::Model, true),
            dom("memory-model", DomainKind::MemoryModel, Method::Model, true),
        ];
        let ok = Verdict::Ok;
        let p = plan_swaps(
            &d,
            &[false, false, false, true, true],
            &[stuck(), ok.clone(), ok.clone(), ok.clone(), ok],
        );
        assert_eq!(p.counted, vec![false, false, true, true, false]);
        assert_eq!(p.covered, vec![1]);
    }

    #[test]
    fn a_rejected_dram_falls_back_to_the_memory_model_alone() {
        let d = vec![
            dom("package-0", DomainKind::CpuPackage, Method::Counter, true),
            dom("dram-0", DomainKind::Dram, Method::Counter, true),
            dom("cpu-model", DomainKind::CpuModel, Method::Model, true),
            dom("memory-model", DomainKind::MemoryModel, Method::Model, true),
        ];
        let ok = Verdict::Ok;
        let p = plan_swaps(
            &d,
            &[false, false, true, true],
            &[ok.clone(), Verdict::Implausible("y".into()), ok.clone(), ok],
        );
        assert_eq!(p.counted, vec![true, false, false, true]);
        assert_eq!(p.swaps[0].replaced_by, vec![3]);
    }

    #[test]
    fn without_standby_a_rejected_domain_leaves_its_scope_empty() {
        let d = vec![
            dom("gpu-0", DomainKind::Gpu, Method::Power, true),
            dom("psys", DomainKind::Psys, Method::Counter, true),
        ];
        let p = plan_swaps(&d, &[], &[stuck(), stuck()]);
        assert_eq!(p.counted, vec![false, false]);
        assert!(p.swaps.iter().all(|s| s.replaced_by.is_empty()));
        assert_eq!(p.swaps.len(), 2);
    }

    #[test]
    fn uncounted_domains_are_never_swapped() {
        let d = vec![
            dom("package-0", DomainKind::CpuPackage, Method::Counter, true),
            dom("core-0", DomainKind::CpuCore, Method::Counter, false),
            dom("cpu-model", DomainKind::CpuModel, Method::Model, true),
        ];
        let p = plan_swaps(
            &d,
            &[false, false, true],
            &[Verdict::Ok, stuck(), Verdict::Ok],
        );
        assert_eq!(p.counted, vec![true, false, false]);
        assert!(p.swaps.is_empty());
    }

    #[test]
    fn a_dead_psys_is_stuck_even_on_an_idle_machine() {
        let v = judge(&w(DomainKind::Psys, 0.0, None), &ev(1.0, Some(0.0)));
        assert_eq!(v.as_str(), "stuck");
        assert!(v.reason().unwrap().contains("always draws power"), "{v:?}");
        // No /proc/stat at all: physics alone decides.
        assert_eq!(
            judge(&w(DomainKind::Psys, 0.0, None), &ev(1.0, None)).as_str(),
            "stuck"
        );
    }

    #[test]
    fn always_drawing_domains_are_stuck_from_the_minimum_window_only() {
        for k in ALWAYS {
            assert_eq!(
                judge(&w(k, 0.0, None), &ev(STUCK_MIN_WINDOW_S, None)).as_str(),
                "stuck",
                "{k}"
            );
            // Shorter than 100 update periods: the counter may not have ticked yet.
            assert_eq!(
                judge(&w(k, 0.0, None), &ev(STUCK_MIN_WINDOW_S * 0.99, Some(0.0))),
                Verdict::Ok,
                "{k}"
            );
            assert_eq!(judge(&w(k, 0.5, None), &ev(5.0, Some(9.0))), Verdict::Ok);
        }
    }

    #[test]
    fn core_and_gpu_domains_need_busy_cpu_evidence() {
        for k in NEEDS_EVIDENCE {
            // Idle machine, zero energy: believable (cores in C6, GPU asleep).
            assert_eq!(judge(&w(k, 0.0, None), &ev(10.0, Some(0.02))), Verdict::Ok);
            assert_eq!(judge(&w(k, 0.0, None), &ev(10.0, None)), Verdict::Ok);
            // Busy just below and at the evidence threshold.
            assert_eq!(
                judge(&w(k, 0.0, None), &ev(10.0, Some(BUSY_EVIDENCE_CPU_S * 0.9))),
                Verdict::Ok
            );
            let v = judge(&w(k, 0.0, None), &ev(10.0, Some(BUSY_EVIDENCE_CPU_S)));
            assert_eq!(v.as_str(), "stuck", "{k}");
            assert!(v.reason().unwrap().contains("busy for 0.10 CPU-s"), "{v:?}");
            assert_eq!(judge(&w(k, 1e-3, None), &ev(10.0, Some(4.0))), Verdict::Ok);
        }
    }

    #[test]
    fn negative_or_nan_energy_is_implausible_for_every_kind() {
        for k in ALWAYS.into_iter().chain(NEEDS_EVIDENCE) {
            for e in [-1.0, f64::NAN, f64::INFINITY] {
                assert_eq!(
                    judge(&w(k, e, None), &ev(1.0, None)).as_str(),
                    "implausible",
                    "{k} {e}"
                );
            }
        }
    }

    #[test]
    fn power_above_the_bound_is_implausible_and_at_it_is_not() {
        let max = 125.0;
        // J over 2 s: exactly the bound (with the slack of one interval).
        let at = max * PLAUSIBLE_MAX_FACTOR * (2.0 + INTERVAL_SLACK_S);
        assert_eq!(
            judge(&w(DomainKind::CpuPackage, at, Some(max)), &ev(2.0, None)),
            Verdict::Ok
        );
        let v = judge(
            &w(DomainKind::CpuPackage, at * 1.01, Some(max)),
            &ev(2.0, None),
        );
        assert_eq!(v.as_str(), "implausible");
        assert!(v.reason().unwrap().contains("125.0 W"), "{v:?}");
        // Unknown or nonsensical maximum: no bound applied.
        for m in [None, Some(0.0), Some(f64::NAN)] {
            assert_eq!(
                judge(&w(DomainKind::CpuPackage, 1e9, m), &ev(1.0, None)),
                Verdict::Ok
            );
        }
        // A zero-length window allows one interval's slack, no more.
        assert_eq!(
            judge(&w(DomainKind::CpuPackage, 0.03, Some(1.0)), &ev(0.0, None)),
            Verdict::Ok
        );
        assert_eq!(
            judge(&w(DomainKind::CpuPackage, 5.0, Some(1.0)), &ev(0.0, None)).as_str(),
            "implausible"
        );
    }

    #[test]
    fn an_interval_jump_is_implausible_with_slack_for_one_update() {
        // 125 W zone: over 1 s up to 3 x 125 x 1.01 = 378.75 J is believable.
        assert_eq!(implausible_interval(378.0, 1.0, Some(125.0)), None);
        let why = implausible_interval(379.0, 1.0, Some(125.0)).unwrap();
        assert!(why.contains("125.0 W"), "{why}");
        // Two reads 50 µs apart straddling one 1 ms update at 200 W (0.2 J): not a jump.
        assert_eq!(implausible_interval(0.2, 50e-6, Some(125.0)), None);
        // A missed wrap read as one: most of a 262 kJ range in 2 s.
        assert!(implausible_interval(200_000.0, 2.0, Some(125.0)).is_some());
        // No maximum known: nothing to bound against.
        assert_eq!(implausible_interval(1e12, 0.0, None), None);
        assert_eq!(implausible_interval(1e12, 0.0, Some(0.0)), None);
        // Negative dt (clock misuse) is treated as zero, not as a larger bound.
        assert!(implausible_interval(10.0, -5.0, Some(125.0)).is_some());
    }

    #[test]
    fn modelled_domains_are_never_judged() {
        for k in [
            DomainKind::CpuModel,
            DomainKind::MemoryModel,
            DomainKind::Psys,
        ] {
            let d = DomainWindow {
                kind: k,
                method: Method::Model,
                energy_j: 0.0,
                max_power_w: None,
            };
            assert_eq!(judge(&d, &ev(100.0, Some(100.0))), Verdict::Ok);
        }
    }

    #[test]
    fn power_sampled_domains_follow_the_same_rules() {
        let d = DomainWindow {
            kind: DomainKind::Gpu,
            method: Method::Power,
            energy_j: 0.0,
            max_power_w: Some(300.0),
        };
        assert_eq!(judge(&d, &ev(5.0, Some(3.0))).as_str(), "stuck");
        assert_eq!(judge(&d, &ev(5.0, Some(0.0))), Verdict::Ok);
    }

    #[test]
    fn the_live_view_swaps_a_dead_psys_for_the_model_once_the_evidence_holds() {
        let domains = vec![
            dom("psys", DomainKind::Psys, Method::Counter, true),
            dom("cpu-model", DomainKind::CpuModel, Method::Model, true),
            dom("memory-model", DomainKind::MemoryModel, Method::Model, true),
        ];
        let standby = [false, true, true];
        // Too early to tell: the counter counts.
        assert_eq!(
            live_counted(&domains, &standby, &[0.0, 0.5, 0.4], 0.05),
            vec![true, false, false]
        );
        // 1 s without a joule: dead, the model counts instead.
        assert_eq!(
            live_counted(&domains, &standby, &[0.0, 8.0, 10.0], 1.0),
            vec![false, true, true]
        );
        // A live counter keeps counting.
        assert_eq!(
            live_counted(&domains, &standby, &[25.0, 8.0, 10.0], 1.0),
            vec![true, false, false]
        );
    }
}
