//! Zones: ISO 3166 alpha-2/alpha-3 countries, `gcp:REGION`, `aws:REGION`, `azure:REGION`,
//! and the `WORLD` / `EU27` aggregates; resolved to embedded factors with their provenance.

use wattprint_data::cloud::{self, Provider};
use wattprint_data::grid::{self, IntensityFactor};

/// A parsed zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Zone {
    /// ISO 3166-1 alpha-2 code (upper case).
    Country(String),
    Cloud {
        provider: Provider,
        region: String,
    },
    World,
    Eu27,
}

impl Zone {
    /// Canonical text: `FR`, `gcp:europe-west1`, `WORLD`, `EU27`.
    pub fn id(&self) -> String {
        match self {
            Zone::Country(c) => c.clone(),
            Zone::Cloud { provider, region } => format!("{}:{region}", provider.as_str()),
            Zone::World => "WORLD".into(),
            Zone::Eu27 => "EU27".into(),
        }
    }

    /// The cloud provider, for the PUE default.
    pub fn provider(&self) -> Option<Provider> {
        match self {
            Zone::Cloud { provider, .. } => Some(*provider),
            _ => None,
        }
    }
}

/// An unknown or malformed zone, with the nearest known zones.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown zone `{zone}`{}; zones are ISO 3166 codes (FR, FRA), gcp:REGION, aws:REGION, azure:REGION, WORLD or EU27 (see `wattprint intensity --list`)", suggest_text(.suggestions))]
pub struct UnknownZone {
    pub zone: String,
    pub suggestions: Vec<String>,
}

fn suggest_text(s: &[String]) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(" (nearest known: {})", s.join(", "))
    }
}

/// Every known zone id (countries with data as alpha-2, cloud regions, aggregates).
pub fn known_zones() -> Vec<String> {
    let mut v: Vec<String> = grid::countries().map(|f| f.zone).collect();
    for p in [Provider::Gcp, Provider::Aws, Provider::Azure] {
        v.extend(
            cloud::regions(p)
                .into_iter()
                .map(|r| format!("{}:{r}", p.as_str())),
        );
    }
    v.push("WORLD".into());
    v.push("EU27".into());
    v
}

/// Parses and resolves a zone to its embedded factor.
pub fn resolve(text: &str) -> Result<(Zone, IntensityFactor), UnknownZone> {
    let t = text.trim();
    let unknown = || UnknownZone {
        zone: text.to_string(),
        suggestions: nearest(t, 5),
    };
    if let Some((p, region)) = t.split_once(':') {
        let provider = Provider::parse(p).ok_or_else(unknown)?;
        let f = cloud::region(provider, region).ok_or_else(unknown)?;
        let region = f.zone.split_once(':').map_or(region, |x| x.1).to_string();
        return Ok((Zone::Cloud { provider, region }, f));
    }
    match t.to_ascii_uppercase().as_str() {
        "WORLD" | "OWID_WRL" => return Ok((Zone::World, grid::world())),
        "EU27" | "EU-27" | "EU" => return Ok((Zone::Eu27, grid::eu27())),
        _ => {}
    }
    if t.len() == 2 || t.len() == 3 {
        if let Some(f) = grid::country(t) {
            return Ok((Zone::Country(f.zone.clone()), f));
        }
    }
    Err(unknown())
}

fn lev(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The `n` known zones nearest to `text` (edit distance, case-insensitive; country names count).
pub fn nearest(text: &str, n: usize) -> Vec<String> {
    let q = text.trim().to_ascii_lowercase();
    let mut scored: Vec<(usize, String)> = Vec::new();
    for z in known_zones() {
        scored.push((lev(&q, &z.to_ascii_lowercase()), z));
    }
    for c in grid::countries() {
        let name = c.name.to_ascii_lowercase();
        let d = if !q.is_empty() && name.contains(&q) {
            0
        } else {
            lev(&q, &name)
        };
        scored.push((d, c.zone));
    }
    scored.sort();
    let mut out: Vec<String> = Vec::new();
    for (_, z) in scored {
        if !out.contains(&z) {
            out.push(z);
        }
        if out.len() == n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countries_resolve_by_alpha2_and_alpha3() {
        let (z, f) = resolve("fr").unwrap();
        assert_eq!(z, Zone::Country("FR".into()));
        assert_eq!(f.g_per_kwh, 44.179085);
        let (z3, _) = resolve("DEU").unwrap();
        assert_eq!(z3.id(), "DE");
    }

    #[test]
    fn cloud_regions_resolve() {
        let (z, f) = resolve("gcp:europe-west1").unwrap();
        assert_eq!(z.id(), "gcp:europe-west1");
        assert_eq!(f.g_per_kwh, 103.37);
        assert_eq!(z.provider(), Some(Provider::Gcp));
        let (z, _) = resolve("AWS:US-EAST-1").unwrap();
        assert_eq!(z.id(), "aws:us-east-1");
    }

    #[test]
    fn unknown_zone_lists_nearest_known() {
        let e = resolve("gcp:europe-wst1").unwrap_err();
        assert_eq!(e.suggestions[0], "gcp:europe-west1");
        let e = resolve("Frnce").unwrap_err();
        assert!(
            e.suggestions.contains(&"FR".to_string()),
            "{:?}",
            e.suggestions
        );
        assert!(e.to_string().contains("nearest known"));
        assert!(resolve("ibm:x").is_err());
        assert!(resolve("").is_err());
        assert!(resolve("ZZ").is_err());
    }

    #[test]
    fn aggregates_resolve() {
        assert_eq!(resolve("world").unwrap().0, Zone::World);
        assert_eq!(resolve("EU27").unwrap().0, Zone::Eu27);
    }
}
