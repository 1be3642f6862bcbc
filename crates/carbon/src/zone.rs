//! Zones: ISO 3166 alpha-2/alpha-3 countries, `gcp:REGION`, `aws:REGION`, `azure:REGION`,
//! the `WORLD` / `EU27` aggregates, subnational grids (ISO 3166-2 `US-VA`, `CA-ON`, `AU-NSW`,
//! `IN-KA`, `CN-BJ`; eGRID subregions `us-egrid:SRVC`) and Electricity Maps' zone names
//! (`US-CAL-CISO`, `DE`, `SE-SE3`); resolved to embedded factors with their provenance.

use wattprint_data::cloud::{self, Provider};
use wattprint_data::grid::{self, IntensityFactor};
use wattprint_data::subnational;

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
    /// A subnational grid: an ISO 3166-2 code (`US-VA`, `CA-ON`) or an eGRID subregion
    /// (`us-egrid:SRVC`), canonical spelling.
    Grid(String),
}

impl Zone {
    /// Canonical text: `FR`, `gcp:europe-west1`, `WORLD`, `EU27`.
    pub fn id(&self) -> String {
        match self {
            Zone::Country(c) => c.clone(),
            Zone::Cloud { provider, region } => format!("{}:{region}", provider.as_str()),
            Zone::World => "WORLD".into(),
            Zone::Eu27 => "EU27".into(),
            Zone::Grid(g) => g.clone(),
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
#[error("unknown zone `{zone}`{}{}; zones are ISO 3166 codes (FR, FRA), subdivisions (US-VA, CA-ON, AU-NSW, IN-KA, CN-BJ), eGRID subregions (us-egrid:SRVC), Electricity Maps names (US-CAL-CISO), gcp:REGION, aws:REGION, azure:REGION, WORLD or EU27 (see `wattprint intensity --list`)", reason_text(.reason), suggest_text(.suggestions))]
pub struct UnknownZone {
    pub zone: String,
    /// Why the zone cannot be resolved, when more is known than "no such zone" (an
    /// Electricity Maps zone spanning several eGRID subregions).
    pub reason: Option<String>,
    pub suggestions: Vec<String>,
}

fn reason_text(r: &Option<String>) -> String {
    r.as_ref().map_or(String::new(), |r| format!(": {r}"))
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
    v.extend(subnational::egrid_subregions().map(|c| format!("us-egrid:{c}")));
    v.extend(subnational::subdivision_codes());
    v.extend(subnational::EM_US_ZONES.iter().map(|z| z.0.to_string()));
    v
}

/// Parses and resolves a zone to its embedded factor.
///
/// Order: `us-egrid:CODE`; `provider:region`; `WORLD` / `EU27`; ISO 3166-1 alpha-2/alpha-3;
/// ISO 3166-2 subdivisions with data; Electricity Maps' US zones that lie in one eGRID
/// subregion; other Electricity Maps zones named in Cloud Carbon Footprint's region table
/// (`SE-SE3`, `JP-TK`), which take their country's factor, with a note saying so.
///
/// Errors: [`UnknownZone`] naming the input, why when known (an Electricity Maps zone that
/// spans several eGRID subregions), and the nearest known zones.
pub fn resolve(text: &str) -> Result<(Zone, IntensityFactor), UnknownZone> {
    let t = text.trim();
    let unknown = || UnknownZone {
        zone: text.to_string(),
        reason: None,
        suggestions: nearest(t, 5),
    };
    if let Some((p, region)) = t.split_once(':') {
        if p.eq_ignore_ascii_case("us-egrid") || p.eq_ignore_ascii_case("egrid") {
            let f = subnational::egrid_subregion(region.trim()).ok_or_else(unknown)?;
            return Ok((Zone::Grid(f.zone.clone()), f));
        }
        let provider = Provider::parse(p).ok_or_else(unknown)?;
        let f = cloud::region(provider, region).ok_or_else(unknown)?;
        let region = f.zone.split_once(':').map_or(region, |x| x.1).to_string();
        return Ok((Zone::Cloud { provider, region }, f));
    }
    let upper = t.to_ascii_uppercase();
    match upper.as_str() {
        "WORLD" | "OWID_WRL" => return Ok((Zone::World, grid::world())),
        "EU27" | "EU-27" | "EU" => return Ok((Zone::Eu27, grid::eu27())),
        _ => {}
    }
    if t.len() == 2 || t.len() == 3 {
        if let Some(f) = grid::country(t) {
            return Ok((Zone::Country(f.zone.clone()), f));
        }
    }
    if let Some(f) = subnational::subdivision(t) {
        return Ok((Zone::Grid(f.zone.clone()), f));
    }
    if let Some((em, code)) = subnational::EM_US_ZONES.iter().find(|z| z.0 == upper) {
        let f = subnational::egrid_subregion(code).ok_or_else(unknown)?;
        let note = format!(
            "Electricity Maps zone {em} lies in eGRID subregion {code}: its annual eGRID2023 rate is used (live values: --live electricitymaps:{em})"
        );
        return Ok((
            Zone::Grid(f.zone.clone()),
            IntensityFactor {
                note: Some(note),
                ..f
            },
        ));
    }
    if let Some((em, subs)) = subnational::EM_US_AMBIGUOUS.iter().find(|z| z.0 == upper) {
        return Err(UnknownZone {
            zone: text.to_string(),
            reason: Some(format!(
                "Electricity Maps zone {em} spans eGRID subregions {}; give one of them or the US state (US-VA)",
                subs.join(", ")
            )),
            suggestions: subs.iter().map(|s| format!("us-egrid:{s}")).collect(),
        });
    }
    if subnational::ccf_electricity_maps_zones().any(|z| z == upper) {
        if let Some(f) = upper.split_once('-').and_then(|(c, _)| grid::country(c)) {
            let note = format!(
                "Electricity Maps zone {upper} is finer than any embedded dataset: the country factor of {} is used (live values: --live electricitymaps:{upper})",
                f.name
            );
            return Ok((
                Zone::Country(f.zone.clone()),
                IntensityFactor {
                    note: Some(note),
                    ..f
                },
            ));
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
    fn subnational_zone_syntaxes_resolve() {
        let (z, f) = resolve("US-VA").unwrap();
        assert_eq!(z, Zone::Grid("US-VA".into()));
        assert_eq!(f.g_per_kwh, 244.758);
        let (z, f) = resolve("us-egrid:SRVC").unwrap();
        assert_eq!(z.id(), "us-egrid:SRVC");
        assert_eq!(f.g_per_kwh, 270.489);
        assert_eq!(resolve("egrid:srvc").unwrap().0.id(), "us-egrid:SRVC");
        assert_eq!(resolve("ca-on").unwrap().1.g_per_kwh, 38.0);
        assert_eq!(resolve("AU-NSW").unwrap().1.g_per_kwh, 640.0);
        assert_eq!(resolve("IN-KA").unwrap().1.g_per_kwh, 405.66);
        assert_eq!(resolve("CN-BJ").unwrap().1.g_per_kwh, 555.4);
        // Country codes still win for two and three letters.
        assert_eq!(resolve("CA").unwrap().0, Zone::Country("CA".into()));
    }

    #[test]
    fn electricity_maps_names_resolve() {
        let (z, f) = resolve("US-CAL-CISO").unwrap();
        assert_eq!(z.id(), "us-egrid:CAMX");
        assert_eq!(f.g_per_kwh, 195.037);
        assert!(f.note.unwrap().contains("US-CAL-CISO"));
        let (z, f) = resolve("DE").unwrap();
        assert_eq!(z, Zone::Country("DE".into()));
        assert!(f.note.is_none());
        let (z, f) = resolve("SE-SE3").unwrap();
        assert_eq!(z, Zone::Country("SE".into()));
        assert!(f.note.unwrap().contains("country factor of Sweden"));
        // AU-NSW is both an EM name and an ISO 3166-2 code: the NGA factor.
        assert_eq!(resolve("AU-NSW").unwrap().1.source, subnational::NGA_SOURCE);
    }

    #[test]
    fn an_em_zone_spanning_subregions_says_so() {
        let e = resolve("US-MIDA-PJM").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("`US-MIDA-PJM`"), "{msg}");
        assert!(msg.contains("RFCE, RFCW, SRVC"), "{msg}");
        assert_eq!(e.suggestions[0], "us-egrid:RFCE");
    }

    #[test]
    fn unknown_subnational_zones_name_the_input_and_near_matches() {
        let e = resolve("US-VX").unwrap_err();
        assert!(e.to_string().contains("`US-VX`"));
        assert!(
            e.suggestions.contains(&"US-VA".to_string()),
            "{:?}",
            e.suggestions
        );
        let e = resolve("us-egrid:SRVX").unwrap_err();
        assert_eq!(e.suggestions[0], "us-egrid:SRVC", "{:?}", e.suggestions);
        let e = resolve("AU-NSX").unwrap_err();
        assert!(
            e.suggestions.contains(&"AU-NSW".to_string()),
            "{:?}",
            e.suggestions
        );
        let e = resolve("IN-KX").unwrap_err();
        assert!(
            e.suggestions.contains(&"IN-KA".to_string()),
            "{:?}",
            e.suggestions
        );
        assert!(resolve("XX-YY").is_err());
    }

    #[test]
    fn every_known_zone_resolves() {
        for z in known_zones() {
            assert!(resolve(&z).is_ok(), "{z}");
        }
    }

    #[test]
    fn aggregates_resolve() {
        assert_eq!(resolve("world").unwrap().0, Zone::World);
        assert_eq!(resolve("EU27").unwrap().0, Zone::Eu27);
    }
}
