//! The web configuration at run time: the TLS acceptor each new connection takes, and
//! the basic auth every request but the webhook's passes (as the exporter toolkit does,
//! `/healthz` and `/readyz` included). Replaced whole on SIGHUP; connections already
//! open keep the TLS they began with.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

use super::WEBHOOK_PATH;
use super::web_config::WebConfig;

/// The most verified credentials remembered; past it the memory starts over.
const MAX_VERIFIED: usize = 1024;

#[derive(Default)]
pub struct Web {
    config: RwLock<Arc<WebConfig>>,
    /// Digests of (user, hash, password) that bcrypt accepted. bcrypt is slow on
    /// purpose (tens of milliseconds at cost 10): verified once, a scraper's password
    /// costs a digest per request after that, as in the toolkit. Failures are not kept.
    verified: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time: a client guessing passwords gets one core at most.
    bcrypt: Mutex<()>,
}

/// The configuration and how many passwords are remembered, not their digests.
impl std::fmt::Debug for Web {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remembered = self.verified.lock().map_or(0, |v| v.len());
        f.debug_struct("Web")
            .field("config", &self.current())
            .field("remembered", &remembered)
            .finish()
    }
}

impl Web {
    pub fn new(config: WebConfig) -> Arc<Web> {
        Arc::new(Web {
            config: RwLock::new(Arc::new(config)),
            ..Web::default()
        })
    }

    /// A reload: new connections and requests follow `config`.
    pub fn replace(&self, config: WebConfig) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }

    pub fn current(&self) -> Arc<WebConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The acceptor for a new connection; `None` serves plain HTTP.
    pub fn tls(&self) -> Option<TlsAcceptor> {
        self.current().tls.clone().map(TlsAcceptor::from)
    }

    /// Whether `headers` carry a user and password of `config`.
    async fn authorized(self: Arc<Self>, config: Arc<WebConfig>, headers: &HeaderMap) -> bool {
        let Some((user, password)) = basic_credentials(headers) else {
            return false;
        };
        // An unknown user costs a bcrypt too, against a known user's hash, so that the
        // time taken does not tell which users exist.
        let (known, hash) = match config.users.get(&user) {
            Some(hash) => (true, hash.clone()),
            None => match config.users.values().next() {
                Some(hash) => (false, hash.clone()),
                None => return false,
            },
        };
        let digest: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .chain_update([0])
            .chain_update(password.as_bytes())
            .finalize()
            .into();
        if known && self.remembered(&digest) {
            return true;
        }
        let web = Arc::clone(&self);
        let verified = tokio::task::spawn_blocking(move || {
            let _one = web.bcrypt.lock().unwrap_or_else(|e| e.into_inner());
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if known && verified {
            let mut remembered = self.verified.lock().unwrap_or_else(|e| e.into_inner());
            if remembered.len() >= MAX_VERIFIED {
                remembered.clear();
            }
            remembered.insert(digest);
        }
        known && verified
    }

    fn remembered(&self, digest: &[u8; 32]) -> bool {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(digest)
    }
}

/// `router` behind the web configuration: basic auth when it lists users (the webhook
/// keeps its own bearer token), and its headers on every response.
pub fn protect(router: Router, web: Arc<Web>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(web, guard))
}

async fn guard(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let config = web.current();
    let open = config.users.is_empty() || request.uri().path() == WEBHOOK_PATH;
    let mut response = if open
        || Arc::clone(&web)
            .authorized(Arc::clone(&config), request.headers())
            .await
    {
        next.run(request).await
    } else {
        unauthorized()
    };
    for (name, value) in &config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"redis-failover-agent\", charset=\"UTF-8\""),
        )],
        "unauthorized: this agent asks for a user and password (basic_auth_users of \
         --web.config.file)\n",
    )
        .into_response()
}

/// The user and password of an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use std::collections::BTreeMap;
    use tower::ServiceExt;

    fn web(hash: &str) -> Arc<Web> {
        Web::new(WebConfig {
            users: BTreeMap::from([("prometheus".to_owned(), hash.to_owned())]),
            headers: vec![(header::X_FRAME_OPTIONS, HeaderValue::from_static("deny"))],
            ..WebConfig::default()
        })
    }

    async fn call(web: &Arc<Web>, path: &str, auth: Option<&str>) -> Response {
        let app = Router::new()
            .route("/metrics", get(|| async { "m" }))
            .route(WEBHOOK_PATH, get(|| async { "w" }));
        let mut request = Request::get(path);
        if let Some(a) = auth {
            request = request.header(header::AUTHORIZATION, a);
        }
        protect(app, Arc::clone(web))
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    #[tokio::test]
    async fn basic_auth_lets_the_right_password_in_and_remembers_it() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let web = web(&hash);
        let right = basic("prometheus", "s3cret");
        for auth in [
            None,
            Some("Bearer x".to_owned()),
            Some(basic("prometheus", "no")),
        ] {
            let response = call(&web, "/metrics", auth.as_deref()).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{auth:?}");
            assert!(
                response.headers()[header::WWW_AUTHENTICATE]
                    .to_str()
                    .unwrap()
                    .starts_with("Basic ")
            );
            assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "deny");
        }
        assert_eq!(
            call(&web, "/metrics", Some(&basic("nobody", "s3cret")))
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
        assert!(
            web.verified.lock().unwrap().is_empty(),
            "failures are not kept"
        );
        let response = call(&web, "/metrics", Some(&right)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "deny");
        assert_eq!(web.verified.lock().unwrap().len(), 1);
        // A second time: from memory (the one entry is still the only one).
        assert_eq!(
            call(&web, "/metrics", Some(&right)).await.status(),
            StatusCode::OK
        );
        assert_eq!(web.verified.lock().unwrap().len(), 1);
        // The webhook keeps its bearer token and is not asked for a password.
        assert_eq!(
            call(&web, WEBHOOK_PATH, None).await.status(),
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_replaced_hash_is_not_served_from_memory() {
        let web = web(&bcrypt::hash("old", 4).unwrap());
        let old = basic("prometheus", "old");
        assert_eq!(
            call(&web, "/metrics", Some(&old)).await.status(),
            StatusCode::OK
        );
        web.replace(WebConfig {
            users: BTreeMap::from([("prometheus".to_owned(), bcrypt::hash("new", 4).unwrap())]),
            ..WebConfig::default()
        });
        assert_eq!(
            call(&web, "/metrics", Some(&old)).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn credentials_are_read_from_the_basic_scheme_only() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, basic("a", "b:c").parse().unwrap());
        assert_eq!(
            basic_credentials(&headers),
            Some(("a".to_owned(), "b:c".to_owned()))
        );
        headers.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(basic_credentials(&headers), None);
    }
}
