//! Pre-normalises `data/cpu-tdp.csv` into a sorted static table (see `src/cpu.rs`), so looking
//! a CPU up costs a few binary searches and no parsing at run time.

include!("src/cpu_normalise.rs");

fn main() {
    let csv_path = "../../data/cpu-tdp.csv";
    println!("cargo:rerun-if-changed={csv_path}");
    println!("cargo:rerun-if-changed=src/cpu_normalise.rs");
    let csv =
        std::fs::read_to_string(csv_path).expect("data/cpu-tdp.csv is part of the repository");
    let mut rows: Vec<(String, String, f64)> = Vec::new();
    for line in csv.lines().skip(1) {
        let Some((name, tdp)) = line.rsplit_once(',') else {
            continue;
        };
        let name = name.trim().trim_matches('"');
        let Ok(tdp_w) = tdp.trim().parse::<f64>() else {
            continue;
        };
        // Family names without a digit are never matched; nor are non-positive TDPs.
        if !name.chars().any(|c| c.is_ascii_digit()) || tdp_w.is_nan() || tdp_w <= 0.0 {
            continue;
        }
        rows.push((normalise(name), name.to_string(), tdp_w));
    }
    // Stable sort then dedup keeps the first row of the file for a repeated name.
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.dedup_by(|b, a| a.0 == b.0);
    let mut out = String::from("&[\n");
    for (k, n, w) in rows {
        out.push_str(&format!("    ({k:?}, {n:?}, {w:?}),\n"));
    }
    out.push_str("]\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("cpu_tdp_table.rs");
    std::fs::write(dest, out).expect("writing the generated table");
}
