//! The broker's secret key: what keeps the secrets in its database useless
//! to whoever reads the database alone (issue 11, finding 4).
//!
//! One 32-byte key, from `TAGCAST_SECRET_KEY` or a key file (64 hex digits
//! or base64 of 32 bytes), or generated into a 0600 file beside the
//! database at first start. Three keys are derived from it with
//! HMAC-SHA256 over fixed labels, so that no two uses share a key:
//!
//! - a ChaCha20-Poly1305 key that seals subscription secrets, hook-source
//!   signing secrets, hook tokens and managed hook URLs. A sealed value is
//!   `tcs1:` and the URL-safe base64 of a random 96-bit nonce followed by
//!   the ciphertext and tag; its row (`subscription:<service id>`, …) is
//!   the associated data, so a sealed value moved to another row does not
//!   open;
//! - an HMAC-SHA256 key for hook tokens: the database keeps the keyed hash
//!   that hooks are looked up by, so a token cannot be found from a copy of
//!   the database without the key, and a lookup never compares plaintext;
//! - the key check value: an HMAC of a label, stored in `settings`, so a
//!   start with another key is refused before anything is written.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

/// The environment variable that may hold the key.
pub const KEY_ENV: &str = "TAGCAST_SECRET_KEY";

/// The prefix of a sealed value (version 1: ChaCha20-Poly1305).
pub const SEALED_PREFIX: &str = "tcs1:";

/// The settings key of the key check value.
pub const CHECK_SETTING: &str = "secret_key_check";

/// 32 bytes of key material. `Debug` never shows it.
#[derive(Clone)]
pub struct SecretKey([u8; 32]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretKey {}

/// The rule a key's text must follow, for error messages.
pub const KEY_RULE: &str = "expected 32 bytes as 64 hex digits or as base64 (standard or URL-safe, padded or not)";

impl SecretKey {
    /// A new random key.
    pub fn generate() -> Self {
        use rand::Rng as _;
        Self(rand::rng().random())
    }

    /// Parses 64 hex digits or base64 of 32 bytes; surrounding whitespace
    /// (a file's final newline) is ignored.
    ///
    /// # Errors
    ///
    /// [`KEY_RULE`], never the text.
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let text = text.trim();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut out = [0; 32];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| KEY_RULE)?;
            }
            return Ok(Self(out));
        }
        use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
        for engine in [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD] {
            if let Ok(bytes) = engine.decode(text) {
                return <[u8; 32]>::try_from(bytes.as_slice()).map(Self).map_err(|_| KEY_RULE);
            }
        }
        Err(KEY_RULE)
    }

    /// The key as 64 hex digits, for a generated key file.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn derive(&self, label: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// Where the key came from: named in errors and logs, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `TAGCAST_SECRET_KEY`.
    Env,
    /// `--secret-key-file` / `secret-key-file`.
    File(PathBuf),
    /// Generated at first start into this file (the default).
    Generated(PathBuf),
    /// Given by a program (tests, tools).
    Given,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env => write!(f, "the environment variable {KEY_ENV}"),
            Self::File(path) => write!(f, "the key file {} (secret-key-file)", path.display()),
            Self::Generated(path) => write!(f, "the generated key file {}", path.display()),
            Self::Given => f.write_str("the key given by the caller"),
        }
    }
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file cannot be read or written.
    #[error("cannot {action} the secret key file {path}")]
    File {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The key's text breaks the rule.
    #[error("invalid secret key in {source_name}: {rule}")]
    Invalid {
        /// Where it came from.
        source_name: String,
        /// The rule.
        rule: &'static str,
    },
}

/// Reads a key file.
///
/// # Errors
///
/// The file cannot be read, or does not hold a key.
pub fn read_key_file(path: &Path) -> Result<SecretKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::File {
        action: "read",
        path: path.display().to_string(),
        source,
    })?;
    SecretKey::parse(&text).map_err(|rule| KeyError::Invalid {
        source_name: KeySource::File(path.to_owned()).to_string(),
        rule,
    })
}

/// The key in `path`, generated and written there (mode 0600, exclusive
/// create) if the file does not exist; true if it was generated.
///
/// # Errors
///
/// The file cannot be read, created or written, or does not hold a key.
pub fn load_or_generate(path: &Path) -> Result<(SecretKey, bool), KeyError> {
    match read_key_file(path) {
        Ok(key) => Ok((key, false)),
        Err(KeyError::File { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write as _;
            let key = SecretKey::generate();
            let io = |source| KeyError::File {
                action: "write",
                path: path.display().to_string(),
                source,
            };
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(io)?;
            writeln!(file, "{}", key.to_hex()).map_err(io)?;
            file.sync_all().map_err(io)?;
            Ok((key, true))
        }
        Err(err) => Err(err),
    }
}

/// A sealed value that does not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a sealed value does not open with the secret key from {source_name} ({why})")]
pub struct OpenError {
    /// The key's source.
    pub source_name: String,
    /// Not sealed, not base64, too short, or the tag does not verify.
    pub why: &'static str,
}

/// The keys derived from one [`SecretKey`].
#[derive(Clone)]
pub struct Keyring {
    aead: ChaCha20Poly1305,
    token_key: [u8; 32],
    check: String,
    source: KeySource,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// The keys of `key`, which came from `source`.
    pub fn new(key: &SecretKey, source: KeySource) -> Self {
        let aead_key = key.derive("tagcast-broker/v1/aead");
        let check = key.derive("tagcast-broker/v1/key-check");
        Self {
            aead: ChaCha20Poly1305::new(Key::from_slice(&aead_key)),
            token_key: key.derive("tagcast-broker/v1/hook-token"),
            check: check.iter().map(|b| format!("{b:02x}")).collect(),
            source,
        }
    }

    /// Where the key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The key check value stored in the database.
    pub fn check_value(&self) -> &str {
        &self.check
    }

    /// Whether a stored check value is this key's (constant time).
    pub fn checks(&self, stored: &str) -> bool {
        self.check.as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// Seals `plaintext` for the row named by `context`.
    pub fn seal(&self, context: &str, plaintext: &str) -> String {
        use rand::Rng as _;
        let nonce: [u8; 12] = rand::rng().random();
        let sealed = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("ChaCha20-Poly1305 seals any message of a string's size");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// Opens a value sealed for `context`.
    ///
    /// # Errors
    ///
    /// [`OpenError`]: not sealed, or sealed under another key or for another row.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, OpenError> {
        let fail = |why| OpenError {
            source_name: self.source.to_string(),
            why,
        };
        let body = sealed.strip_prefix(SEALED_PREFIX).ok_or_else(|| fail("not sealed"))?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| fail("not base64"))?;
        if bytes.len() < 12 + 16 {
            return Err(fail("too short"));
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let plain = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| fail("authentication failed: another key or another row"))?;
        String::from_utf8(plain).map_err(|_| fail("not UTF-8"))
    }

    /// The keyed hash a hook token is stored and looked up by, hex.
    pub fn token_hash(&self, token: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.token_key).expect("HMAC takes any key length");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The keys a store opens with: the current key, and during a rotation the
/// previous one, which the database may still be sealed under.
#[derive(Debug, Clone)]
pub struct Keys {
    /// What everything is sealed under from now on.
    pub current: Keyring,
    /// `--previous-secret-key-file`: a database under this key is moved to
    /// the current one at open.
    pub previous: Option<Keyring>,
}

impl Keys {
    /// Only a current key.
    pub fn new(current: Keyring) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// A key for tests and tools that open a throw-away database: random,
    /// so it opens nothing written before.
    pub fn ephemeral() -> Self {
        Self::new(Keyring::new(&SecretKey::generate(), KeySource::Given))
    }
}

/// Whether a stored value is sealed (else it is plaintext from a broker
/// before sealing, to be sealed at start).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED_PREFIX)
}

/// The row context of a subscription's secret.
pub fn subscription_context(service_id: &str) -> String {
    format!("subscription-secret:{service_id}")
}

/// The row context of a hook source's signing secret.
pub fn hook_secret_context(kind: &str, registry: &str) -> String {
    format!("hook-secret:{kind}:{registry}")
}

/// The row context of a hook source's token (current or previous).
pub fn hook_token_context(kind: &str, registry: &str) -> String {
    format!("hook-token:{kind}:{registry}")
}

/// The row context of a managed hook's URL (it carries a hook token).
pub fn managed_hook_context(registry: &str, scope: &str) -> String {
    format!("managed-hook-url:{registry}:{scope}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::new(&SecretKey::parse(&"11".repeat(32)).unwrap(), KeySource::Given)
    }

    #[test]
    fn keys_parse_as_hex_or_base64_and_nothing_else() {
        let hex = SecretKey::parse(&"ab".repeat(32)).unwrap();
        let b64 = SecretKey::parse(&base64::engine::general_purpose::STANDARD.encode([0xab; 32])).unwrap();
        let url = SecretKey::parse(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xab; 32])).unwrap();
        assert!(hex == b64 && b64 == url);
        assert_eq!(SecretKey::parse(&format!("{}\n", "ab".repeat(32))).unwrap(), hex);
        for bad in [
            "",
            "short",
            &"ab".repeat(31),
            &base64::engine::general_purpose::STANDARD.encode([1; 31]),
        ] {
            assert_eq!(SecretKey::parse(bad), Err(KEY_RULE), "{bad:?}");
        }
        assert!(!format!("{hex:?}").contains("ab"), "Debug shows no key material");
    }

    #[test]
    fn sealed_values_open_only_with_their_key_and_row() {
        let ring = ring();
        let sealed = ring.seal("subscription-secret:a", "whsec_x");
        assert!(is_sealed(&sealed) && !sealed.contains("whsec_x"));
        assert_ne!(
            sealed,
            ring.seal("subscription-secret:a", "whsec_x"),
            "a fresh nonce each time"
        );
        assert_eq!(ring.open("subscription-secret:a", &sealed).unwrap(), "whsec_x");
        assert!(ring.open("subscription-secret:b", &sealed).is_err(), "another row");
        let other = Keyring::new(&SecretKey::parse(&"22".repeat(32)).unwrap(), KeySource::Env);
        let err = other.open("subscription-secret:a", &sealed).unwrap_err();
        assert!(err.to_string().contains(KEY_ENV), "{err}");
        assert!(
            ring.open("subscription-secret:a", "whsec_x").is_err(),
            "plaintext is not sealed"
        );
        assert_ne!(ring.token_hash("t"), other.token_hash("t"));
        assert!(ring.checks(ring.check_value()) && !other.checks(ring.check_value()));
    }
}
