//! Generates the embedded grid-intensity and cloud-region tables from the CSV files in the
//! repository's `data/` folder (attribution in `data/NOTICE.md`). A malformed source file
//! fails the build with the file, line and field named.
//!
//! Also pre-normalises `data/cpu-tdp.csv` into a sorted static table (see `src/cpu.rs`), so
//! looking a CPU up costs a few binary searches and no parsing at run time, and turns
//! `data/gpu-specs.csv` into the static GPU table (see `src/gpu.rs`). Every file is read by
//! the `csv` crate.

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

include!("src/cpu_normalise.rs");

fn main() {
    carbon_tables();
    cpu_table();
    gpu_table();
    ccf_tables();
    subnational_tables();
    ccf_instance_tables();
}

fn data_dir() -> PathBuf {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest.join("../../data")
}

fn reader(path: &Path) -> csv::Reader<fs::File> {
    println!("cargo:rerun-if-changed={}", path.display());
    csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One record of a source table, with its file for error messages (`FILE:LINE: ...`).
struct Row<'a> {
    rec: csv::StringRecord,
    path: &'a Path,
}

impl Row<'_> {
    /// The record's line in its file (1-based; 0 when the reader did not say).
    fn line(&self) -> u64 {
        self.rec.position().map(|p| p.line()).unwrap_or(0)
    }

    /// Field `i` (`name` for the message); panics naming the file and line when missing.
    fn str(&self, i: usize, name: &str) -> &str {
        self.rec.get(i).unwrap_or_else(|| {
            panic!(
                "{}:{}: missing field `{name}`",
                self.path.display(),
                self.line()
            )
        })
    }

    /// Field `i` as a finite, non-negative number.
    fn num(&self, i: usize, name: &str) -> f64 {
        self.parse_num(self.str(i, name), name)
    }

    /// `s` (field `name` of this record) as a finite, non-negative number.
    fn parse_num(&self, s: &str, name: &str) -> f64 {
        let (path, line) = (self.path.display(), self.line());
        let v: f64 = s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("{path}:{line}: field `{name}` = {s:?}: {e}"));
        assert!(
            v.is_finite() && v >= 0.0,
            "{path}:{line}: field `{name}` = {v} is not a finite non-negative number"
        );
        v
    }
}

/// The records of the CSV file at `path` (header skipped); panics naming the file on a bad one.
fn rows(path: &Path) -> impl Iterator<Item = Row<'_>> {
    records(reader(path), path)
}

/// The records of `rdr` (read from `path`), as [`Row`]s.
fn records(rdr: csv::Reader<fs::File>, path: &Path) -> impl Iterator<Item = Row<'_>> {
    rdr.into_records().map(move |rec| Row {
        rec: rec.unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        path,
    })
}

fn carbon_tables() {
    let dir = data_dir();
    let mut out = String::new();

    // ISO 3166-1 alpha-2 <-> alpha-3.
    let iso_path = dir.join("iso3166-1.csv");
    let mut iso: Vec<(String, String, String)> = Vec::new();
    for rec in rows(&iso_path) {
        iso.push((
            rec.str(0, "alpha_2").to_string(),
            rec.str(1, "alpha_3").to_string(),
            rec.str(2, "name").to_string(),
        ));
    }
    let a3_to_a2: BTreeMap<&str, &str> = iso
        .iter()
        .map(|(a2, a3, _)| (a3.as_str(), a2.as_str()))
        .collect();
    out.push_str("/// ISO 3166-1 codes: (alpha-2, alpha-3, name).\npub static ISO_CODES: &[(&str, &str, &str)] = &[\n");
    for (a2, a3, name) in &iso {
        writeln!(out, "    ({a2:?}, {a3:?}, {name:?}),").unwrap();
    }
    out.push_str("];\n\n");

    // Ember / OWID: latest year per code; World and EU-27 aggregates.
    let grid_path = dir.join("grid-intensity-ember-owid.csv");
    let mut latest: BTreeMap<String, (String, i32, f64)> = BTreeMap::new();
    let mut aggregates: BTreeMap<&str, (i32, f64)> = BTreeMap::new();
    for rec in rows(&grid_path) {
        let entity = rec.str(0, "Entity");
        let code = rec.str(1, "Code");
        let year = rec.num(2, "Year") as i32;
        let value = rec.num(3, "Carbon intensity");
        let agg = match (entity, code) {
            ("World", _) => Some("WORLD"),
            ("European Union (27)", _) => Some("EU27"),
            _ => None,
        };
        if let Some(a) = agg {
            let e = aggregates.entry(a).or_insert((year, value));
            if year > e.0 {
                *e = (year, value);
            }
            continue;
        }
        let alpha3 = match code {
            "" => continue,
            "OWID_KOS" => "XKX",
            c if c.starts_with("OWID_") => continue,
            c => c,
        };
        let e = latest
            .entry(alpha3.to_string())
            .or_insert((entity.to_string(), year, value));
        if year > e.1 {
            *e = (entity.to_string(), year, value);
        }
    }
    out.push_str("/// Countries: (alpha-2, alpha-3, name, gCO2e/kWh, year), latest year per code.\npub static COUNTRY_INTENSITY: &[(&str, &str, &str, f64, i32)] = &[\n");
    for (a3, (name, year, value)) in &latest {
        let a2 = a3_to_a2.get(a3.as_str()).unwrap_or_else(|| {
            panic!(
                "{}: code {a3} ({name}) is not in iso3166-1.csv",
                grid_path.display()
            )
        });
        writeln!(out, "    ({a2:?}, {a3:?}, {name:?}, {value:?}, {year}),").unwrap();
    }
    out.push_str("];\n\n");
    for (name, key) in [("WORLD", "WORLD"), ("EU27", "EU27")] {
        let (year, value) = aggregates
            .get(key)
            .unwrap_or_else(|| panic!("{}: aggregate {key} missing", grid_path.display()));
        writeln!(out, "/// Aggregate (gCO2e/kWh, year).\npub static {name}_INTENSITY: (f64, i32) = ({value:?}, {year});\n").unwrap();
    }

    // Google Cloud regions.
    let gcp_path = dir.join("gcp-region-carbon-2024.csv");
    out.push_str("/// Google Cloud regions: (region, location, Google CFE share 0..1, grid gCO2e/kWh).\npub static GCP_REGIONS: &[(&str, &str, f64, f64)] = &[\n");
    for rec in rows(&gcp_path) {
        let region = rec.str(0, "Google Cloud Region");
        let location = rec.str(1, "Location");
        let cfe = rec.num(2, "Google CFE");
        let g = rec.num(3, "Grid carbon intensity");
        writeln!(out, "    ({region:?}, {location:?}, {cfe:?}, {g:?}),").unwrap();
    }
    out.push_str("];\n\n");

    // AWS and Azure regions -> country.
    let cloud_path = dir.join("cloud-regions.csv");
    out.push_str("/// AWS and Azure regions: (provider, region, location, country alpha-2, ISO 3166-2 subdivision or \"\", eGRID subregion or \"\").\npub static CLOUD_REGIONS: &[(&str, &str, &str, &str, &str, &str)] = &[\n");
    for rec in rows(&cloud_path) {
        let line = rec.line();
        let provider = rec.str(0, "provider");
        let region = rec.str(1, "region");
        let location = rec.str(2, "location");
        let a2 = rec.str(3, "country_alpha2");
        let sub = rec.str(4, "subdivision");
        let egrid = rec.str(5, "egrid_subregion");
        let has_data = iso
            .iter()
            .any(|(i2, i3, _)| i2 == a2 && latest.contains_key(i3));
        assert!(
            has_data,
            "{}: {provider}:{region} maps to {a2}, which has no intensity",
            cloud_path.display()
        );
        assert!(
            sub.is_empty() || sub.starts_with(&format!("{a2}-")),
            "{}:{line}: subdivision {sub:?} is not in country {a2}",
            cloud_path.display()
        );
        assert!(
            egrid.is_empty() || a2 == "US",
            "{}:{line}: eGRID subregion {egrid:?} outside the US",
            cloud_path.display()
        );
        writeln!(
            out,
            "    ({provider:?}, {region:?}, {location:?}, {a2:?}, {sub:?}, {egrid:?}),"
        )
        .unwrap();
    }
    out.push_str("];\n");

    let dest =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("carbon_tables.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
    println!("cargo:rerun-if-changed=build.rs");
}

/// The CPU TDP table, pre-normalised and sorted (see `src/cpu.rs`).
fn cpu_table() {
    let path = data_dir().join("cpu-tdp.csv");
    println!("cargo:rerun-if-changed=src/cpu_normalise.rs");
    let mut cpus: Vec<(String, String, f64)> = Vec::new();
    for rec in rows(&path) {
        let name = rec.str(0, "Name").trim();
        // Rows whose TDP is not one number (`27.29.5` in the source: a range) are skipped.
        let Ok(tdp_w) = rec.str(1, "TDP").trim().parse::<f64>() else {
            continue;
        };
        // Family names without a digit are never matched; nor are non-positive TDPs.
        if !name.chars().any(|c| c.is_ascii_digit()) || tdp_w.is_nan() || tdp_w <= 0.0 {
            continue;
        }
        cpus.push((normalise(name), name.to_string(), tdp_w));
    }
    // Stable sort then dedup keeps the first row of the file for a repeated name.
    cpus.sort_by(|a, b| a.0.cmp(&b.0));
    cpus.dedup_by(|b, a| a.0 == b.0);
    // Relocation-free layout: every name in one string, rows of offsets into it. A table of
    // `&str` would need a load-time relocation per pointer (about 10,000), paid by every
    // start of the binary whether the table is used or not.
    let mut text = String::new();
    let mut table = String::new();
    for (k, n, w) in cpus {
        let ks = text.len();
        text.push_str(&k);
        let ns = text.len();
        text.push_str(&n);
        table.push_str(&format!(
            "    Row {{ norm: ({ks}, {}), name: ({ns}, {}), tdp_w: {w:?} }},\n",
            k.len(),
            n.len()
        ));
    }
    let out = format!("static TEXT: &str = {text:?};\nstatic TABLE: &[Row] = &[\n{table}];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("cpu_tdp_table.rs");
    std::fs::write(dest, out).expect("writing the generated table");
}

/// The GPU hardware table, as `static GPU_SPECS: &[GpuSpec]` (13 rows: `&str` fields cost a
/// few relocations only). Checks every row: numbers finite and >= 0, `tdp_w` present.
fn gpu_table() {
    let path = data_dir().join("gpu-specs.csv");
    let mut rdr = reader(&path);
    let header = rdr
        .headers()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .clone();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .unwrap_or_else(|| panic!("{}: no `{name}` column", path.display()))
    };
    let cols = [
        "model",
        "vendor",
        "tdp_w",
        "fp32_tflops",
        "tf32_tflops",
        "bf16_tflops",
        "fp8_tflops",
        "embodied_kgco2e",
        "embodied_source",
        "spec_confidence",
    ]
    .map(col);
    let mut out = String::from("static GPU_SPECS: &[GpuSpec] = &[\n");
    for rec in records(rdr, &path) {
        let f = |i: usize| rec.str(cols[i], &header[cols[i]]).trim();
        let opt_num = |i: usize| match f(i) {
            "" => "None".to_string(),
            s => format!("Some({:?})", rec.parse_num(s, &header[cols[i]])),
        };
        let opt_text = |i: usize| match f(i) {
            "" => "None".to_string(),
            s => format!("Some({s:?})"),
        };
        let line = rec.line();
        assert!(
            !f(0).is_empty(),
            "{}:{line}: field `model` is empty",
            path.display()
        );
        assert!(
            !f(2).is_empty(),
            "{}:{line}: field `tdp_w` is empty",
            path.display()
        );
        let confidence = match f(9) {
            "" => "unstated",
            s => s,
        };
        writeln!(
            out,
            "    GpuSpec {{ model: {:?}, vendor: {:?}, tdp_w: {:?}, fp32_tflops: {}, \
             tf32_tflops: {}, bf16_tflops: {}, fp8_tflops: {}, embodied_kgco2e: {}, \
             embodied_source: {}, spec_confidence: {confidence:?} }},",
            f(0),
            f(1),
            rec.parse_num(f(2), "tdp_w"),
            opt_num(3),
            opt_num(4),
            opt_num(5),
            opt_num(6),
            opt_num(7),
            opt_text(8),
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("gpu_specs.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}

/// Cloud Carbon Footprint's use coefficients per provider and micro-architecture (see
/// `src/ccf.rs`): `data/ccf-coefficients-{aws,azure,gcp}-use.csv`, verbatim copies of CCF's
/// files (header `,Architecture,Min Watts,Max Watts,GB/Chip`). Architecture names are mapped
/// to the `Architecture` enum here, so a new or misspelt name fails the build.
fn ccf_tables() {
    let dir = data_dir();
    let mut out = String::from(
        "/// (provider, architecture, min W per vCPU, max W per vCPU, GB per chip).\n\
         static USE_ROWS: &[(Provider, Architecture, f64, f64, f64)] = &[\n",
    );
    for (provider, file) in [
        ("Aws", "ccf-coefficients-aws-use.csv"),
        ("Azure", "ccf-coefficients-azure-use.csv"),
        ("Gcp", "ccf-coefficients-gcp-use.csv"),
    ] {
        let path = dir.join(file);
        for rec in rows(&path) {
            let line = rec.line();
            let name = rec.str(1, "Architecture");
            let arch = match name {
                "Graviton" => "Graviton",
                "Graviton2" => "Graviton2",
                "Sandy Bridge" => "SandyBridge",
                "Ivy Bridge" => "IvyBridge",
                "Haswell" => "Haswell",
                "Broadwell" => "Broadwell",
                "Skylake" | "Sky Lake" => "Skylake",
                "Cascade Lake" => "CascadeLake",
                "Coffee Lake" => "CoffeeLake",
                "EPYC 1st Gen" => "Epyc1",
                "EPYC 2nd Gen" => "Epyc2",
                "EPYC 3rd Gen" => "Epyc3",
                other => panic!(
                    "{}:{line}: architecture {other:?} is not known to build.rs: add it to \
                     `Architecture` (src/ccf.rs) and to this match",
                    path.display()
                ),
            };
            let min_w = rec.num(2, "Min Watts");
            let max_w = rec.num(3, "Max Watts");
            let gb = rec.num(4, "GB/Chip");
            assert!(
                min_w > 0.0 && min_w <= max_w,
                "{}:{line}: Min Watts {min_w} must be positive and at most Max Watts {max_w}",
                path.display()
            );
            writeln!(
                out,
                "    (Provider::{provider}, Architecture::{arch}, {min_w:?}, {max_w:?}, {gb:?}),"
            )
            .unwrap();
        }
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ccf_tables.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}

/// Subnational grid factors (see `src/subnational.rs`): eGRID2023 subregions and states, ECCC
/// provinces, NGA states, Ember India states, MEE/NBS China provinces, and the cloud-region
/// table of Cloud Carbon Footprint (Electricity Maps zone, NERC region: for mapping only).
/// Each file's latest vintage per area is kept; every row is checked (numbers finite and >= 0).
fn subnational_tables() {
    let dir = data_dir();
    let mut out = String::new();

    // eGRID2023 subregions: (code, name, g/kWh, data year, edition).
    let path = dir.join("grid-us-egrid2023-subregions.csv");
    out.push_str("/// eGRID subregions: (code, name, gCO2e/kWh, data year, edition).\npub static EGRID_SUBREGIONS: &[(&str, &str, f64, i32, &str)] = &[\n");
    for rec in rows(&path) {
        let code = rec.str(0, "subregion");
        let name = rec.str(1, "subregion_name");
        let year = rec.num(2, "data_year") as i32;
        let edition = rec.str(3, "edition");
        let g = rec.num(8, "co2e_g_per_kwh");
        writeln!(out, "    ({code:?}, {name:?}, {g:?}, {year}, {edition:?}),").unwrap();
    }
    out.push_str("];\n\n");

    // eGRID2023 states.
    let path = dir.join("grid-us-states.csv");
    out.push_str("/// eGRID states: (postal code, gCO2e/kWh, data year, edition).\npub static EGRID_STATES: &[(&str, f64, i32, &str)] = &[\n");
    for rec in rows(&path) {
        let code = rec.str(0, "state");
        let year = rec.num(1, "data_year") as i32;
        let edition = rec.str(2, "edition");
        let g = rec.num(7, "co2e_g_per_kwh");
        writeln!(out, "    ({code:?}, {g:?}, {year}, {edition:?}),").unwrap();
    }
    out.push_str("];\n\n");

    // Canada: latest year per province with a consumption intensity; Prince Edward Island's
    // consumption is marked "use New Brunswick" in the source and takes NB's value.
    let path = dir.join("grid-ca-provinces.csv");
    let mut ca: BTreeMap<String, (String, i32, bool, Option<f64>, String)> = BTreeMap::new();
    for rec in rows(&path) {
        let code = rec.str(0, "region_code").to_string();
        let name = rec.str(1, "region_name").to_string();
        let year = rec.num(2, "year") as i32;
        let prelim = rec.str(3, "preliminary") == "yes";
        let cons = match rec.str(5, "consumption_intensity_gco2e_per_kwh").trim() {
            "" => None,
            s => Some(rec.parse_num(s, "consumption_intensity_gco2e_per_kwh")),
        };
        let note = rec.str(6, "note").to_string();
        let e = ca
            .entry(code)
            .or_insert((name.clone(), year, prelim, cons, note.clone()));
        if year > e.1 {
            *e = (name, year, prelim, cons, note);
        }
    }
    out.push_str("/// Canada: (code, name, gCO2e/kWh consumption intensity, year, preliminary, note).\npub static CA_PROVINCES: &[(&str, &str, f64, i32, bool, &str)] = &[\n");
    for (code, (name, year, prelim, cons, note)) in &ca {
        let (g, note) = match cons {
            Some(g) => (*g, String::new()),
            None if code == "CA-PE" => {
                let nb = ca.get("CA-NB").and_then(|r| r.3).unwrap_or_else(|| {
                    panic!(
                        "{}: CA-PE needs New Brunswick's consumption value",
                        path.display()
                    )
                });
                (nb, "New Brunswick's consumption intensity, as the source directs for Prince Edward Island (high imports from NB)".to_string())
            }
            None => panic!(
                "{}: {code} {year}: no consumption intensity ({note})",
                path.display()
            ),
        };
        writeln!(
            out,
            "    ({code:?}, {name:?}, {g:?}, {year}, {prelim}, {note:?}),"
        )
        .unwrap();
    }
    out.push_str("];\n\n");

    // Australia: the latest NGA edition, Table 1 location-based rows per state/grid.
    let path = dir.join("grid-au-states.csv");
    let mut au: Vec<(i32, String, String, String, f64)> = Vec::new();
    for rec in rows(&path) {
        let line = rec.line();
        let edition = rec.str(0, "edition");
        let year: i32 = edition
            .trim_start_matches("NGA Factors ")
            .parse()
            .unwrap_or_else(|e| panic!("{}:{line}: edition {edition:?}: {e}", path.display()));
        if !rec.str(2, "factor_type").starts_with("location-based") {
            continue;
        }
        let label = rec.str(3, "region_label_in_source").to_string();
        let iso = rec.str(4, "iso_3166_2").to_string();
        let grid = rec.str(5, "grid").to_string();
        let kg = rec.num(6, "scope2_kgco2e_per_kwh");
        au.push((year, label, iso, grid, kg * 1000.0));
    }
    let latest_au = au
        .iter()
        .map(|r| r.0)
        .max()
        .unwrap_or_else(|| panic!("{}: no location-based rows", path.display()));
    out.push_str("/// Australia, latest NGA edition: (ISO 3166-2 codes `;`-separated, label, grid, gCO2e/kWh scope 2, edition year).\npub static AU_STATES: &[(&str, &str, &str, f64, i32)] = &[\n");
    for (year, label, iso, grid, g) in au.iter().filter(|r| r.0 == latest_au) {
        writeln!(out, "    ({iso:?}, {label:?}, {grid:?}, {g:?}, {year}),").unwrap();
    }
    out.push_str("];\n\n");

    // India: latest year per state.
    let path = dir.join("grid-in-states.csv");
    let mut ind: BTreeMap<String, (String, i32, f64)> = BTreeMap::new();
    for rec in rows(&path) {
        let name = rec.str(0, "state").to_string();
        let code = rec.str(1, "state_code").to_string();
        let year = rec.num(3, "year") as i32;
        let g = rec.str(4, "co2_intensity_gco2_per_kwh");
        if code == "OT" && g.trim().is_empty() {
            continue; // "Others": no state, no value in the source
        }
        let g = rec.parse_num(g, "co2_intensity_gco2_per_kwh");
        let e = ind.entry(code).or_insert((name.clone(), year, g));
        if year > e.1 {
            *e = (name, year, g);
        }
    }
    out.push_str("/// India: (Ember state code, name, gCO2/kWh, year).\npub static IN_STATES: &[(&str, &str, f64, i32)] = &[\n");
    for (code, (name, year, g)) in &ind {
        writeln!(out, "    ({code:?}, {name:?}, {g:?}, {year}),").unwrap();
    }
    out.push_str("];\n\n");

    // China.
    let path = dir.join("grid-cn-provinces.csv");
    out.push_str("/// China: (ISO 3166-2, province, gCO2/kWh, year).\npub static CN_PROVINCES: &[(&str, &str, f64, i32)] = &[\n");
    for rec in rows(&path) {
        let iso = rec.str(0, "iso_3166_2");
        let name = rec.str(1, "province");
        let year = rec.num(2, "year") as i32;
        let g = rec.num(3, "co2_g_per_kwh");
        writeln!(out, "    ({iso:?}, {name:?}, {g:?}, {year}),").unwrap();
    }
    out.push_str("];\n\n");

    // Cloud Carbon Footprint's region table: mapping only (its factors are old, not used).
    let path = dir.join("cloud-regions-grid.csv");
    out.push_str("/// CCF regions: (provider, region, location in CCF docs, Electricity Maps zone, NERC region).\npub static CCF_REGIONS: &[(&str, &str, &str, &str, &str)] = &[\n");
    for rec in rows(&path) {
        let provider = rec.str(0, "provider");
        let region = rec.str(1, "region");
        let location = rec.str(3, "location_in_ccf_docs");
        let em = rec.str(4, "electricity_maps_zone");
        let nerc = rec.str(6, "ccf_us_nerc_region");
        writeln!(
            out,
            "    ({provider:?}, {region:?}, {location:?}, {em:?}, {nerc:?}),"
        )
        .unwrap();
    }
    out.push_str("];\n");

    let dest = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("subnational_tables.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}

fn arch_variant(name: &str, path: &Path, line: u64) -> &'static str {
    match name {
        "Graviton" => "Graviton",
        "Graviton2" => "Graviton2",
        "Sandy Bridge" => "SandyBridge",
        "Ivy Bridge" => "IvyBridge",
        "Haswell" => "Haswell",
        "Broadwell" => "Broadwell",
        "Skylake" | "Sky Lake" => "Skylake",
        "Cascade Lake" => "CascadeLake",
        "Coffee Lake" => "CoffeeLake",
        "EPYC 1st Gen" => "Epyc1",
        "EPYC 2nd Gen" => "Epyc2",
        "EPYC 3rd Gen" => "Epyc3",
        other => panic!(
            "{}:{line}: architecture {other:?} is not known to build.rs",
            path.display()
        ),
    }
}

/// CCF's embodied kgCO2e per instance type (AWS; Google Cloud mean), as sorted tables with
/// their file line (for citations), and our AWS instance families -> CCF architectures.
fn ccf_instance_tables() {
    let dir = data_dir();
    let mut out = String::new();
    for (name, file, col) in [
        ("AWS_EMBODIED", "ccf-coefficients-aws-embodied.csv", 6),
        ("GCP_EMBODIED", "ccf-coefficients-gcp-embodied-mean.csv", 2),
    ] {
        let path = dir.join(file);
        let mut table: Vec<(String, f64, u64)> = Vec::new();
        for rec in rows(&path) {
            let line = rec.line();
            let ty = rec.str(1, "type").trim().to_string();
            let kg = rec.num(col, "total");
            assert!(
                kg > 0.0,
                "{}:{line}: total {kg} must be positive",
                path.display()
            );
            table.push((ty, kg, line));
        }
        table.sort_by(|a, b| a.0.cmp(&b.0));
        table.dedup_by(|b, a| a.0 == b.0);
        writeln!(out, "/// `{file}`: (instance type, total embodied kgCO2e, file line), sorted.\npub(crate) static {name}: &[(&str, f64, u64)] = &[").unwrap();
        for (ty, kg, line) in table {
            writeln!(out, "    ({ty:?}, {kg:?}, {line}),").unwrap();
        }
        out.push_str("];\n\n");
    }
    let path = dir.join("ccf-aws-instance-families.csv");
    out.push_str("/// AWS instance families: (family, architectures, accelerator, note).\npub(crate) static AWS_FAMILIES: &[(&str, &[Architecture], &str, &str)] = &[\n");
    for rec in rows(&path) {
        let line = rec.line();
        let fam = rec.str(0, "family");
        let archs: Vec<String> = rec
            .str(1, "architectures")
            .split(';')
            .map(|a| format!("Architecture::{}", arch_variant(a.trim(), &path, line)))
            .collect();
        let acc = rec.str(2, "accelerator");
        let note = rec.str(3, "note");
        writeln!(
            out,
            "    ({fam:?}, &[{}], {acc:?}, {note:?}),",
            archs.join(", ")
        )
        .unwrap();
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("ccf_instances.rs");
    fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
