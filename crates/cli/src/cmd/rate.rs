//! `wattprint rate FILE`: AI-Energy-Score-compatible stars per task (and class), rank
//! quintiles on request, and absolute A-G grades against a thresholds file.

use crate::exit::BadInput;
use std::io::Write;
use std::path::PathBuf;
use wattprint_core::rating::{apply_grades, rate, RatingMethod};
use wattprint_report::ratefile::{parse_rating_csv, parse_thresholds_csv};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Equal-width bins over each group's min-max range (AI Energy Score).
    EqualWidth,
    /// Rank quintiles.
    Quintile,
}

/// Options of `wattprint rate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// CSV with columns `model,task,energy` and optional `class` (energy per query, one unit).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "equal-width")]
    pub method: Method,
    /// CSV of A-G upper bounds: `task[,class],A,B,C,D,E,F` (above F is G).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    /// Print a JSON array of {model, task, class, energy, stars[, grade]}.
    #[arg(long)]
    pub json: bool,
}

/// Largest ratings or thresholds file, bytes (a row per model and task: a few KB).
const MAX_RATE_FILE_BYTES: u64 = 64 << 20;

fn read(p: &std::path::Path) -> anyhow::Result<String> {
    crate::common::read_lines_bounded(p, 64 * 1024, MAX_RATE_FILE_BYTES)
        .map_err(|e| BadInput(format!("{}: cannot read: {e}", p.display())).into())
}

pub fn main(args: Args) -> anyhow::Result<u8> {
    let rows = parse_rating_csv(&read(&args.file)?)
        .map_err(|e| BadInput(format!("{}: {e}", args.file.display())))?;
    let method = match args.method {
        Method::EqualWidth => RatingMethod::EqualWidth,
        Method::Quintile => RatingMethod::Quintile,
    };
    let mut rated = rate(&rows, method).map_err(|e| BadInput(e.to_string()))?;
    if let Some(t) = &args.thresholds {
        let th = parse_thresholds_csv(&read(t)?)
            .map_err(|e| BadInput(format!("{}: {e}", t.display())))?;
        apply_grades(&mut rated, &th).map_err(|e| BadInput(e.to_string()))?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&rated)?)?;
        return Ok(0);
    }
    let has_grades = rated.iter().any(|r| r.grade.is_some());
    let body: Vec<Vec<String>> = rated
        .iter()
        .map(|r| {
            let mut v = vec![
                r.model.clone(),
                r.task.clone(),
                r.class.clone().unwrap_or_else(|| "-".into()),
                wattprint_report::render::sig(r.energy),
                format!(
                    "{}{}",
                    "★".repeat(r.stars as usize),
                    "☆".repeat(5 - r.stars as usize)
                ),
            ];
            if has_grades {
                v.push(r.grade.map(String::from).unwrap_or_else(|| "-".into()));
            }
            v
        })
        .collect();
    let mut header = vec!["MODEL", "TASK", "CLASS", "ENERGY", "STARS"];
    if has_grades {
        header.push("GRADE");
    }
    write!(
        out,
        "{}",
        wattprint_report::render::text_table(&header, &body)
    )?;
    Ok(0)
}
