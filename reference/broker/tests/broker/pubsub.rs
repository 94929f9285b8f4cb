//! Pub/Sub push tokens for the `gar` kind: an RSA key generated once per
//! run stands in for Google's, its JWKS is the registry's `jwks`, and the
//! tokens are signed as "Authentication for push subscriptions" describes
//! (RS256, `kid`; `aud`, `iss`, `exp`, `iat`, `email`, `email_verified`).
//! Also: the broker fetches a JWKS served over HTTP and picks up a rotated
//! key.

use std::sync::OnceLock;

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use tagcast_broker::inbound::oidc::{Jwks, PushAuth, PushTokens};
use tagcast_broker::registries::Registry;
use tagcast_spec::subscription::RegistryKind;

/// The audience the push subscription is configured with.
pub const AUDIENCE: &str = "https://broker.example.org/hooks/gar";
/// The subscription's service account.
pub const SERVICE_ACCOUNT: &str = "tagcast-push@my-project.iam.gserviceaccount.com";
const KID: &str = "test-key-1";

struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

fn generate(kid: &str) -> Key {
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
    let b64 = |bytes: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let jwk = json!({
        "kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid,
        "n": b64(private.n().to_bytes_be()),
        "e": b64(private.e().to_bytes_be()),
    });
    let der = private.to_pkcs1_der().unwrap();
    Key {
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk,
    }
}

/// Google's key, as far as the tests know.
fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| generate(KID))
}

/// An attacker's key, published nowhere, used under Google's `kid`.
fn other_key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| generate(KID))
}

/// The JWKS of [`key`].
pub fn jwks() -> Value {
    json!({"keys": [key().jwk]})
}

/// The JWKS of [`key`], parsed.
pub fn jwks_keys() -> JwkSet {
    serde_json::from_value(jwks()).unwrap()
}

/// A `gar` registry entry whose pushes must carry tokens for
/// [`AUDIENCE`] from [`SERVICE_ACCOUNT`], signed by a key of `keys`.
pub fn registry(host: &str, keys: JwkSet) -> Registry {
    registry_with(host, Jwks::Keys(keys))
}

fn registry_with(host: &str, jwks: Jwks) -> Registry {
    Registry {
        host: host.to_owned(),
        kind: RegistryKind::Gar,
        api: None,
        verify_required: false,
        pull: None,
        manage: None,
        push_auth: Some(PushAuth {
            audience: AUDIENCE.to_owned(),
            email: Some(SERVICE_ACCOUNT.to_owned()),
            jwks,
        }),
    }
}

/// The claims of a token, valid unless changed.
pub struct Claims(Value);

impl Claims {
    /// What Pub/Sub sends, valid for an hour.
    pub fn valid() -> Self {
        let now = chrono::Utc::now().timestamp();
        Self(json!({
            "aud": AUDIENCE,
            "azp": "113774264463038321964",
            "email": SERVICE_ACCOUNT,
            "email_verified": true,
            "exp": now + 3600,
            "iat": now,
            "iss": "https://accounts.google.com",
            "sub": "113774264463038321964",
        }))
    }

    /// Expired ten minutes ago (beyond any clock-skew leeway).
    pub fn expired(mut self) -> Self {
        let now = chrono::Utc::now().timestamp();
        self.0["iat"] = json!(now - 4200);
        self.0["exp"] = json!(now - 600);
        self
    }

    /// For another audience.
    pub fn audience(mut self, audience: &str) -> Self {
        self.0["aud"] = json!(audience);
        self
    }

    /// For another service account.
    pub fn email(mut self, email: &str) -> Self {
        self.0["email"] = json!(email);
        self
    }

    /// From another issuer.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.0["iss"] = json!(issuer);
        self
    }
}

fn sign(key: &Key, claims: &Claims) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.to_owned());
    jsonwebtoken::encode(&header, &claims.0, &key.encoding).unwrap()
}

/// A token signed by the published key.
pub fn token(claims: Claims) -> String {
    sign(key(), &claims)
}

/// A token signed by a key that is not published, under the published `kid`.
pub fn forged(claims: Claims) -> String {
    sign(other_key(), &claims)
}

fn bearer(token: &str) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    headers
}

/// Keys come from a JWKS served over HTTP: none before the first fetch
/// (a token is refused, not waved through), the served ones after it,
/// and a key rotated in after a refresh. A server answering an error
/// keeps the known keys.
#[tokio::test]
async fn keys_are_fetched_from_a_served_jwks_and_refreshed() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let url = format!("{}/oauth2/v3/certs", server.uri());
    let registry = registry_with("us-west1-docker.pkg.dev", Jwks::Url(url));
    let tokens = PushTokens::new(registry.push_auth.unwrap());
    let client = reqwest::Client::new();
    let valid = token(Claims::valid());

    let before = tokens.check(&bearer(&valid)).unwrap_err().to_string();
    assert!(before.contains("not in the JWKS"), "{before}");

    Mock::given(method("GET"))
        .and(path("/oauth2/v3/certs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    assert_eq!(tokens.refresh(&client).await.unwrap(), 1);
    tokens.check(&bearer(&valid)).unwrap();
    let forged = tokens.check(&bearer(&forged(Claims::valid()))).unwrap_err().to_string();
    assert!(forged.contains("signature"), "{forged}");

    // The key server fails: the known key stays in use.
    Mock::given(method("GET"))
        .and(path("/oauth2/v3/certs"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = tokens.refresh(&client).await.unwrap_err().to_string();
    assert!(err.contains("503"), "{err}");
    tokens.check(&bearer(&valid)).unwrap();
}

/// Every way a token can be wrong is refused with a reason that names the
/// check, never the token.
#[test]
fn refusals_name_the_failed_check() {
    let tokens = PushTokens::new(registry("us-west1-docker.pkg.dev", jwks_keys()).push_auth.unwrap());
    let refused = |token: String| {
        let reason = tokens.check(&bearer(&token)).unwrap_err().to_string();
        assert!(!reason.contains(&token), "the token is not echoed: {reason}");
        reason
    };
    tokens.check(&bearer(&token(Claims::valid()))).unwrap();
    assert!(refused(token(Claims::valid().expired())).contains("expired"));
    assert!(refused(token(Claims::valid().audience("https://x.example.org"))).contains("audience"));
    assert!(refused(token(Claims::valid().issuer("https://x.example.org"))).contains("issued"));
    assert!(refused(token(Claims::valid().email("x@y.iam.gserviceaccount.com"))).contains("service account"));
    assert!(refused(forged(Claims::valid())).contains("signature"));
    assert!(refused("not-a-jwt".to_owned()).contains("not a JWT"));
    let none = tokens.check(&axum::http::HeaderMap::new()).unwrap_err().to_string();
    assert!(none.contains("Authorization: Bearer"), "{none}");
}
