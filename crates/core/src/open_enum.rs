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

    /// Serialise, compare with the JSON string, parse back: the same value.
    fn round_trip<T>(v: &T, text: &str)
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let json = serde_json::to_string(v).unwrap();
        assert_eq!(json, serde_json::to_string(text).unwrap());
        let back: T = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, v);
    }

    #[test]
    fn every_carbon_basis_keeps_its_json_string() {
        for (b, text) in [
            (CarbonBasis::Unset, ""),
            (CarbonBasis::Lifecycle, "lifecycle"),
            (CarbonBasis::Direct, "direct"),
            (CarbonBasis::Unspecified, "unspecified"),
        ] {
            round_trip(&b, text);
            assert_eq!(CarbonBasis::from(text), b);
            assert_eq!(b.to_string(), text);
        }
        assert_eq!(CarbonBasis::KNOWN.len(), 4);
        let other = CarbonBasis::from("as computed by CodeCarbon");
        assert_eq!(
            other,
            CarbonBasis::Other("as computed by CodeCarbon".into())
        );
        round_trip(&other, "as computed by CodeCarbon");
        assert_eq!(CarbonBasis::default(), CarbonBasis::Unset);
    }

    #[test]
    fn every_sensor_source_keeps_its_json_string() {
        for (s, text) in [
            (SensorSource::RaplPowercap, "rapl-powercap"),
            (SensorSource::RaplPerf, "rapl-perf"),
            (SensorSource::Nvml, "nvml"),
            (SensorSource::Amdsmi, "amdsmi"),
            (SensorSource::Hwmon, "hwmon"),
            (SensorSource::UtilisationModel, "utilisation-model"),
            (SensorSource::AgentSocket, "wattprint-agent"),
        ] {
            round_trip(&s, text);
            assert_eq!(SensorSource::from(text.to_string()), s);
            assert_eq!(s.as_str(), text);
        }
        assert_eq!(SensorSource::KNOWN.len(), 7);
        let other = SensorSource::from("fake");
        assert_eq!(other, SensorSource::Other("fake".into()));
        round_trip(&other, "fake");
        // Case matters, as it did for the strings.
        assert_eq!(
            SensorSource::from("NVML"),
            SensorSource::Other("NVML".into())
        );
    }
}
