//! Encryption of stored connection passwords (AES-256-GCM under the master key) and the
//! master key itself: from `security.secret_key`, or a 0600 key file in the data directory.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

const KEY_FILE: &str = "secret.key";
/// Stored values start with this tag so that a later key or cipher change can be told apart.
const TAG: &str = "v1:";

/// The master key. Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct MasterKey {
    cipher: Aes256Gcm,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the stored secret is not in a known format")]
    Format,
    #[error("the stored secret cannot be decrypted with this master key (was the key changed?)")]
    Decrypt,
    #[error("master key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("master key file {0} does not hold a base64-encoded 32-byte key")]
    KeyFileContent(String),
}

/// Decode a base64 32-byte key; `None` when it is not one.
pub fn decode_key(text: &str) -> Option<[u8; 32]> {
    let bytes = B64.decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        }
    }

    /// The configured key, or the key file in `data_dir` (created with mode 0600 when absent).
    pub fn load(configured: &SecretString, data_dir: &Path) -> Result<Self, SecretError> {
        if !configured.expose_secret().is_empty() {
            let bytes = decode_key(configured.expose_secret())
                .ok_or_else(|| SecretError::KeyFileContent("security.secret_key".into()))?;
            return Ok(Self::from_bytes(&bytes));
        }
        let path = data_dir.join(KEY_FILE);
        let io_err = |source| SecretError::KeyFile {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = decode_key(&text)
                    .ok_or_else(|| SecretError::KeyFileContent(path.display().to_string()))?;
                Ok(Self::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir).map_err(io_err)?;
                let key = Aes256Gcm::generate_key(OsRng);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options.open(&path).map_err(io_err)?;
                file.write_all(B64.encode(key.as_slice()).as_bytes())
                    .and_then(|_| file.sync_all())
                    .map_err(io_err)?;
                tracing::info!(path = %path.display(), "Generated a new master key file.");
                Ok(Self::from_bytes(&key.into()))
            }
            Err(e) => Err(io_err(e)),
        }
    }

    /// Encrypt a secret for storage: `v1:` + base64(nonce ‖ ciphertext).
    pub fn encrypt(&self, plain: &SecretString) -> String {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(&nonce, plain.expose_secret().as_bytes())
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        format!("{TAG}{}", B64.encode(out))
    }

    pub fn decrypt(&self, stored: &str) -> Result<SecretString, SecretError> {
        let body = stored.strip_prefix(TAG).ok_or(SecretError::Format)?;
        let bytes = B64.decode(body).map_err(|_| SecretError::Format)?;
        if bytes.len() < 12 {
            return Err(SecretError::Format);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| SecretError::Decrypt)?;
        let text = String::from_utf8(plain).map_err(|_| SecretError::Format)?;
        Ok(SecretString::from(text))
    }
}

/// Hash a user's password with argon2id (default parameters, random salt). CPU-heavy: call it
/// from a blocking thread.
pub fn hash_password(password: &SecretString) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .expect("argon2 hashing with default parameters cannot fail")
        .to_string()
}

/// Check a password against a stored argon2 hash. CPU-heavy: call it from a blocking thread.
pub fn verify_password(password: &SecretString, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(parsed) => argon2::Argon2::default()
            .verify_password(password.expose_secret().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new API token (`slc_` + 32 random bytes, base64url) and the hex SHA-256 it is stored as.
pub fn new_api_token() -> (SecretString, String) {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = format!("slc_{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = token_hash(&token);
    (SecretString::from(token), hash)
}

/// The hex SHA-256 under which a token is stored and looked up.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A strong random password for the bootstrap admin (24 characters, base64url alphabet).
pub fn generate_password() -> SecretString {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    OsRng.fill_bytes(&mut bytes);
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_password_verifies_and_a_wrong_one_does_not() {
        let hash = hash_password(&SecretString::from("correct horse"));
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&SecretString::from("correct horse"), &hash));
        assert!(!verify_password(&SecretString::from("wrong horse"), &hash));
    }

    #[test]
    fn a_password_round_trips_and_the_stored_form_does_not_contain_it() {
        let key = MasterKey::from_bytes(&[7u8; 32]);
        let stored = key.encrypt(&SecretString::from("hunter2-hunter2"));
        assert!(!stored.contains("hunter2"));
        assert_eq!(
            key.decrypt(&stored).unwrap().expose_secret(),
            "hunter2-hunter2"
        );
    }

    #[test]
    fn another_key_cannot_decrypt() {
        let stored = MasterKey::from_bytes(&[7u8; 32]).encrypt(&SecretString::from("pw"));
        let other = MasterKey::from_bytes(&[8u8; 32]);
        assert!(matches!(other.decrypt(&stored), Err(SecretError::Decrypt)));
    }

    #[test]
    fn the_key_file_is_created_with_mode_0600_and_reused() {
        let dir = std::env::temp_dir().join(format!("sluice-key-{}", uuid::Uuid::new_v4()));
        let empty = SecretString::from("");
        let first = MasterKey::load(&empty, &dir).unwrap();
        let stored = first.encrypt(&SecretString::from("pw"));
        let second = MasterKey::load(&empty, &dir).unwrap();
        assert_eq!(second.decrypt(&stored).unwrap().expose_secret(), "pw");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
