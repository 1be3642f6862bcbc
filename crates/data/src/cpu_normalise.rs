// Shared by `build.rs` (which pre-normalises the table) and `cpu.rs` (which normalises
// queries), so both sides match by construction.

/// Normalise a CPU name for matching (see the module docs).
pub fn normalise(name: &str) -> String {
    let mut s = name.to_lowercase();
    for junk in ["(r)", "(tm)", "®", "™"] {
        s = s.replace(junk, " ");
    }
    if let Some(at) = s.find('@') {
        s.truncate(at);
    }
    s.split_whitespace()
        .filter(|w| *w != "cpu" && *w != "processor" && !w.ends_with("-core"))
        .collect::<Vec<_>>()
        .join(" ")
}

