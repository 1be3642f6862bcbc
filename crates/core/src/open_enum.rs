//! Enums over open sets of names: the known names are variants, any other name is kept as
//! `Other(String)`. Each is serialised as its name, so the JSON keeps the strings it always
//! had (`wattprint.run/v1` does not change) while the code matches on variants.

/// Define an open enum: `$name { Variant => "spelling", ... }` plus `Other(String)`, with
/// `as_str`, `KNOWN` (every named variant), `From<&str>`/`From<String>` (a known spelling
/// gives its variant, anything else `Other`, so `Other` never holds a known spelling),
/// `Display`, ordering by the spelling (as the strings sorted before), and serde as the
/// plain string.
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $var:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $var, )+
            /// Any other name, kept as given.
            Other(String),
        }

        impl $name {
            /// Every named variant (not `Other`).
            pub const KNOWN: &'static [$name] = &[$($name::$var),+];

            /// The name as serialised.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$var => $text, )+
                    $name::Other(s) => s,
                }
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $text => $name::$var, )+
                    _ => $name::Other(s.to_string()),
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $( $text => $name::$var, )+
                    _ => $name::Other(s),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map($name::from)
            }
        }
    };
}

pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    use crate::domain::SensorSource;
    use crate::report::CarbonBasis;
    use std::fmt::Debug;

    /// Serialise, compare with the JSON string, parse back: the same value.
    fn round_trip<T>(v: &T, text: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug,
    {
        let json = serde_json::to_string(v).unwrap();
        assert_eq!(json, serde_json::to_string(text).unwrap());
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, v);
    }

    /// `spellings` covers every known variant (`all`, in order), each keeps its string both
    /// ways, and `other` is kept as given.
    fn keeps_its_strings<T>(all: &[T], spellings: &[(T, &str)], other: &str, wrap: fn(String) -> T)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + Debug + Clone,
        T: for<'a> From<&'a str> + From<String> + std::fmt::Display,
    {
        let named: Vec<T> = spellings.iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(named, all);
        for (v, text) in spellings {
            round_trip(v, text);
            assert_eq!(&T::from(*text), v);
            assert_eq!(&T::from(text.to_string()), v);
            assert_eq!(v.to_string(), *text);
        }
        let o = T::from(other);
        assert_eq!(o, wrap(other.to_string()));
        round_trip(&o, other);
    }

    #[test]
    fn every_carbon_basis_keeps_its_json_string() {
        keeps_its_strings(
            CarbonBasis::KNOWN,
            &[
                (CarbonBasis::Unset, ""),
                (CarbonBasis::Lifecycle, "lifecycle"),
                (CarbonBasis::Direct, "direct"),
                (CarbonBasis::Unspecified, "unspecified"),
            ],
            "as computed by CodeCarbon",
            CarbonBasis::Other,
        );
        assert_eq!(CarbonBasis::default(), CarbonBasis::Unset);
    }

    #[test]
    fn every_sensor_source_keeps_its_json_string() {
        keeps_its_strings(
            SensorSource::KNOWN,
            &[
                (SensorSource::RaplPowercap, "rapl-powercap"),
                (SensorSource::RaplPerf, "rapl-perf"),
                (SensorSource::Nvml, "nvml"),
                (SensorSource::Amdsmi, "amdsmi"),
                (SensorSource::Hwmon, "hwmon"),
                (SensorSource::UtilisationModel, "utilisation-model"),
                (SensorSource::AgentSocket, "wattprint-agent"),
            ],
            "fake",
            SensorSource::Other,
        );
        // Case matters, as it did for the strings.
        assert_eq!(
            SensorSource::from("NVML"),
            SensorSource::Other("NVML".into())
        );
        assert_eq!(SensorSource::default().as_str(), "");
    }

    #[test]
    fn open_enums_sort_by_their_spelling() {
        let mut v = [
            CarbonBasis::Unspecified,
            CarbonBasis::Lifecycle,
            CarbonBasis::from("as computed by CodeCarbon"),
            CarbonBasis::Direct,
        ];
        v.sort();
        let s: Vec<&str> = v.iter().map(CarbonBasis::as_str).collect();
        assert_eq!(
            s,
            vec![
                "as computed by CodeCarbon",
                "direct",
                "lifecycle",
                "unspecified"
            ]
        );
    }
}
