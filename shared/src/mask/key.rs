//! The masking key: from Secrets Manager in the cloud, from the environment or a local key
//! file offline. Its bytes never reach a log: `Debug` prints the version only.

use std::path::Path;

use crate::{Error, Result};

/// The environment variable naming the Secrets Manager secret that holds the key.
pub const SECRET_ENV: &str = crate::config::MASKING_SECRET;
/// The environment variable holding the key itself (offline use).
pub const KEY_ENV: &str = crate::config::MASKING_KEY;
/// The key file the offline stack creates under its home on first use.
pub const KEY_FILE: &str = "masking.key";

/// The shortest key accepted, in bytes.
const MIN_KEY_BYTES: usize = 16;

/// A secret key for keyed hashing, with the version written into curated metadata.
#[derive(Clone)]
pub struct MaskingKey {
    secret: Vec<u8>,
    version: String,
}

impl std::fmt::Debug for MaskingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskingKey").field("version", &self.version).field("secret", &"<redacted>").finish()
    }
}

impl MaskingKey {
    /// A key of at least 16 bytes.
    pub fn new(secret: Vec<u8>, version: impl Into<String>) -> Result<MaskingKey> {
        if secret.len() < MIN_KEY_BYTES {
            return Err(Error::Configuration(format!(
                "the masking key is {} bytes; use at least {MIN_KEY_BYTES} random bytes (e.g. 64 hex characters)",
                secret.len()
            )));
        }
        Ok(MaskingKey { secret, version: version.into() })
    }

    /// The key's bytes, for the hashing code only.
    pub(crate) fn secret(&self) -> &[u8] {
        &self.secret
    }

    /// The key's version, e.g. `v1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Reads a secret string: either the key itself, or JSON `{"key": "...", "version": "v2"}`
    /// (the version defaults to `default_version`, the contract's `masking.key_version`).
    pub fn from_secret_string(text: &str, default_version: &str) -> Result<MaskingKey> {
        let text = text.trim();
        if text.starts_with('{') {
            #[derive(serde::Deserialize)]
            struct Secret {
                key: String,
                #[serde(default)]
                version: Option<String>,
            }
            let secret: Secret = serde_json::from_str(text).map_err(|_| {
                Error::Configuration(
                    "the masking secret is JSON but not {\"key\": \"...\", \"version\": \"...\"}".to_string(),
                )
            })?;
            let version = secret.version.unwrap_or_else(|| default_version.to_string());
            return MaskingKey::new(secret.key.into_bytes(), version);
        }
        MaskingKey::new(text.as_bytes().to_vec(), default_version)
    }

    /// Reads the key from AWS Secrets Manager (once per cold start).
    pub async fn from_secrets_manager(
        client: &aws_sdk_secretsmanager::Client,
        secret_id: &str,
        default_version: &str,
    ) -> Result<MaskingKey> {
        let output = client.get_secret_value().secret_id(secret_id).send().await.map_err(|error| {
            Error::Configuration(format!(
                "cannot read the masking key secret `{secret_id}`: {}",
                crate::error_chain(&error)
            ))
        })?;
        let text = output
            .secret_string()
            .ok_or_else(|| Error::Configuration(format!("the secret `{secret_id}` has no string value")))?;
        let key = MaskingKey::from_secret_string(text, default_version)?;
        tracing::info!(secret = %secret_id, version = %key.version, "Masking key loaded.");
        Ok(key)
    }

    /// The offline key: `LAKESTAR_MASKING_KEY` if set, else `<home>/masking.key`, created with
    /// 32 random bytes (hex) and owner-only permissions on first use.
    pub fn local(home: &Path, default_version: &str) -> Result<MaskingKey> {
        if let Some(text) = &crate::config::Environment::get().masking_key {
            return MaskingKey::from_secret_string(text, default_version);
        }
        let path = home.join(KEY_FILE);
        let io = |source| Error::Io { path: path.clone(), source };
        if !path.exists() {
            std::fs::create_dir_all(home).map_err(|source| Error::Io { path: home.to_path_buf(), source })?;
            let mut random = [0u8; 32];
            std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").map_err(io)?, &mut random)
                .map_err(io)?;
            let hex: String = random.iter().map(|byte| format!("{byte:02x}")).collect();
            std::fs::write(&path, hex).map_err(io)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            }
            tracing::info!(path = %path.display(), "Created a local masking key.");
        }
        let text = std::fs::read_to_string(&path).map_err(io)?;
        MaskingKey::from_secret_string(&text, default_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused_and_debug_hides_the_secret() {
        assert!(MaskingKey::new(b"short".to_vec(), "v1").is_err());
        let key = MaskingKey::new(b"0123456789abcdef0123".to_vec(), "v3").expect("long enough");
        let shown = format!("{key:?}");
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.contains("v3"));
    }

    #[test]
    fn a_json_secret_carries_its_version() {
        let key =
            MaskingKey::from_secret_string(r#"{"key": "0123456789abcdef0123", "version": "v7"}"#, "v1").expect("valid");
        assert_eq!(key.version(), "v7");
        let key = MaskingKey::from_secret_string("0123456789abcdef0123\n", "v1").expect("valid");
        assert_eq!(key.version(), "v1");
        assert_eq!(key.secret(), b"0123456789abcdef0123");
    }

    #[test]
    fn the_local_key_file_is_created_once_and_reused() {
        let home = tempfile::tempdir().expect("temporary folder");
        let first = MaskingKey::local(home.path(), "v1").expect("created");
        let second = MaskingKey::local(home.path(), "v1").expect("read");
        assert_eq!(first.secret(), second.secret());
        assert_eq!(first.secret().len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.path().join(KEY_FILE)).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
