//! Accounts: what a username and a password must be.

use super::DomainError;

pub const MIN_PASSWORD_LEN: usize = 8;
const MAX_PASSWORD_LEN: usize = 1024;

/// Check a username; returns it trimmed.
pub fn validate_username(name: &str) -> Result<String, DomainError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 {
        return Err(DomainError::validation(
            "username",
            "username must be 1 to 64 characters",
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'))
    {
        return Err(DomainError::validation(
            "username",
            "username may hold letters, digits and _ - . @ only",
        ));
    }
    Ok(name.to_string())
}

pub fn validate_password(password: &str) -> Result<(), DomainError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN {
        return Err(DomainError::validation(
            "password",
            format!("password must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(DomainError::validation(
            "password",
            format!("password must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(())
}
