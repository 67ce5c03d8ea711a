//! Which versions of the WIT contract (`weft:plugin`) this runtime links.

use std::fmt;

/// The contract version this runtime implements (it also links the
/// earlier lines of [`super::linked::LINES`]).
pub const WIT_VERSION: Version = Version {
    major: 0,
    minor: 2,
    patch: 0,
};

/// True when a plugin built against `v` links with this runtime: it is
/// compatible with one of the linked lines.
pub fn linked(v: &Version) -> bool {
    super::linked::LINES
        .iter()
        .any(|line| v.compatible_with(line))
}

/// The linked lines for people: `weft:plugin@0.2.x, weft:plugin@0.1.x`.
pub fn linked_lines() -> String {
    super::linked::LINES
        .iter()
        .map(|l| {
            if l.major == 0 {
                format!("{WIT_PACKAGE}@0.{}.x", l.minor)
            } else {
                format!("{WIT_PACKAGE}@{}.x", l.major)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The WIT package plugins are built against.
pub const WIT_PACKAGE: &str = "weft:plugin";

/// A semver version of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Patch version.
    pub patch: u64,
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH` (a pre-release or build suffix is ignored).
    pub fn parse(text: &str) -> Option<Version> {
        let core = text.split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        let v = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(v)
    }

    /// True when a plugin built against `self` links with a runtime that
    /// implements `runtime`: same major version (for 0.x, same minor), and
    /// not newer than the runtime.
    pub fn compatible_with(&self, runtime: &Version) -> bool {
        let same_line = if self.major == 0 {
            runtime.major == 0 && self.minor == runtime.minor
        } else {
            self.major == runtime.major
        };
        same_line && (self.minor, self.patch) <= (runtime.minor, runtime.patch)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Finds the contract version a component was built against, from the
/// names of its exports and imports (`weft:plugin/transform@0.1.0`).
/// Returns `None` when the component does not use the contract at all.
pub fn version_of<'a>(names: impl IntoIterator<Item = &'a str>) -> Option<Result<Version, String>> {
    let prefix = format!("{WIT_PACKAGE}/");
    names.into_iter().find_map(|name| {
        let rest = name.strip_prefix(&prefix)?;
        let (_, version) = rest.split_once('@')?;
        Some(Version::parse(version).ok_or_else(|| version.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compatibility_follows_semver() {
        let rt = Version::parse("0.1.3").unwrap();
        assert!(Version::parse("0.1.0").unwrap().compatible_with(&rt));
        assert!(!Version::parse("0.2.0").unwrap().compatible_with(&rt));
        assert!(!Version::parse("0.1.4").unwrap().compatible_with(&rt));
        assert!(!Version::parse("1.0.0").unwrap().compatible_with(&rt));
        let rt1 = Version::parse("1.4.0").unwrap();
        assert!(Version::parse("1.0.0").unwrap().compatible_with(&rt1));
        assert!(!Version::parse("2.0.0").unwrap().compatible_with(&rt1));
    }

    #[test]
    fn finds_the_version_in_names() {
        let names = ["wasi:cli/stdout@0.2.6", "weft:plugin/transform@0.1.0"];
        assert_eq!(
            version_of(names.iter().copied()),
            Some(Ok(Version::parse("0.1.0").unwrap()))
        );
        assert_eq!(version_of(["wasi:io/error@0.2.0"]), None);
    }

    #[test]
    fn this_runtime_links_0_1_and_0_2() {
        for ok in ["0.1.0", "0.2.0"] {
            assert!(linked(&Version::parse(ok).unwrap()), "{ok}");
        }
        for no in ["0.1.1", "0.2.1", "0.3.0", "1.0.0"] {
            assert!(!linked(&Version::parse(no).unwrap()), "{no}");
        }
        assert_eq!(linked_lines(), "weft:plugin@0.2.x, weft:plugin@0.1.x");
    }
}
