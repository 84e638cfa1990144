//! The registry: every kind of endpoint by name, mapped to its connector. Adding a kind is its
//! folder under `src/engine/` and one line in `REGISTRY`.

use super::connector::{DbKind, Registered};
use super::{mysql, postgres, sqlite};

/// The registered kinds: a kind's canonical name and other spellings, and its connector.
/// Adding a kind is one line here (and its folder).
const REGISTRY: &[&Registered] = &[
    &postgres::KIND,
    &mysql::MYSQL,
    &mysql::MARIADB,
    &sqlite::KIND,
];

impl DbKind {
    /// Parse a connection type: a registered name or spelling, in any case.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().to_ascii_lowercase();
        REGISTRY
            .iter()
            .find(|r| r.name == text || r.aliases.contains(&text.as_str()))
            .map(|r| DbKind::of(r))
    }

    /// The kind of this name; panics on a name that is not registered (for code and tests
    /// naming a kind Sluice ships).
    pub fn named(name: &str) -> Self {
        Self::parse(name).unwrap_or_else(|| panic!("no connector is registered as {name:?}"))
    }

    /// Every registered canonical name, for messages.
    pub fn names() -> Vec<&'static str> {
        REGISTRY.iter().map(|r| r.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names_and_spellings() {
        assert_eq!(DbKind::parse("postgres"), Some(DbKind::named("postgresql")));
        assert_eq!(
            DbKind::parse("MariaDB").map(DbKind::as_str),
            Some("mariadb")
        );
        assert_eq!(DbKind::parse("sqlite3").map(DbKind::as_str), Some("sqlite"));
        assert_eq!(DbKind::parse("oracle"), None);
        assert_eq!(
            DbKind::names(),
            ["postgresql", "mysql", "mariadb", "sqlite"]
        );
        assert!(!DbKind::named("sqlite").is_server());
    }
}
