//! A stand-in for Google Cloud DNS (API v1), Google's OAuth 2.0 token endpoint and the
//! GCE metadata server, on one loopback port, built from the public references'
//! request and response formats:
//!
//! - `GET dns/v1/projects/{project}/managedZones/{zone}/rrsets?name=&type=` answers
//!   `{"kind": "dns#resourceRecordSetsListResponse", "rrsets": [...]}`, each set
//!   `{kind, name, type, ttl, rrdatas}` ("resourceRecordSets.list",
//!   <https://cloud.google.com/dns/docs/reference/rest/v1/resourceRecordSets/list>).
//! - `POST .../changes` with a `Change` (`additions`, `deletions`) applies it whole or
//!   not at all: each deletion must match the set held "exactly" (name, type, ttl,
//!   rrdatas), else 412 `conditionNotMet`, "Precondition not met for
//!   'entity.change.deletions[N]'"; an addition of a set that exists after the
//!   deletions is 409 `alreadyExists`. It answers the `Change` with its `id` and
//!   `status` (`pending` or `done`) ("changes.create",
//!   <https://cloud.google.com/dns/docs/reference/rest/v1/changes/create>; error
//!   reasons: <https://cloud.google.com/dns/docs/error-messages>).
//! - `GET .../changes/{id}` answers the change, `pending` for as many polls as
//!   scripted, then `done` ("changes.get",
//!   <https://cloud.google.com/dns/docs/reference/rest/v1/changes/get>).
//! - Every API call needs `Authorization: Bearer <a token this stand-in issued>`; else
//!   401 with Google's error body (`UNAUTHENTICATED`, reason `authError`).
//! - `POST /token` is the token endpoint of a service account key's `token_uri`: the
//!   JWT-bearer grant (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&
//!   assertion=<JWT>`), whose RS256 signature is checked with the key's public key,
//!   `iss` the key's `client_email`, `aud` the `token_uri`, `scope` the Cloud DNS
//!   scope; it answers `{access_token, expires_in, token_type}`, or 400
//!   `invalid_grant` ("Using OAuth 2.0 for Server to Server Applications",
//!   <https://developers.google.com/identity/protocols/oauth2/service-account#httprest>).
//! - `GET /computeMetadata/v1/instance/service-accounts/default/token` with
//!   `Metadata-Flavor: Google` answers a token the same way; without the header, 403
//!   ("Access service account credentials", <https://cloud.google.com/compute/docs/access/authenticate-workloads#applications>).
//!
//! Faults are scripted per method and path: a status with Google's error body and a
//! `Retry-After`. Every request is logged (its head without the bearer, its body).
//! It binds 127.0.0.1:0 and serves each connection on a thread.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value as Json, json};

pub const PROJECT: &str = "my-project";
pub const ZONE: &str = "prod-zone";
pub const CLIENT_EMAIL: &str = "failover@my-project.iam.gserviceaccount.com";
pub const SCOPE: &str = "https://www.googleapis.com/auth/ndev.clouddns.readwrite";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: String,
    pub status: u16,
}

/// A refusal with Google's error body, for [`CloudDns::fail`].
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
    pub message: String,
    /// `Retry-After`, seconds.
    pub retry_after: Option<u32>,
}

impl Refusal {
    pub fn new(status: u16, reason: &str, message: &str) -> Refusal {
        Refusal {
            status,
            reason: reason.to_owned(),
            message: message.to_owned(),
            retry_after: None,
        }
    }

    pub fn retry_after(mut self, secs: u32) -> Refusal {
        self.retry_after = Some(secs);
        self
    }
}

/// A scripted answer for the next requests that match.
#[derive(Debug, Clone)]
struct Fault {
    method: &'static str,
    path: &'static str,
    times: u32,
    refusal: Refusal,
}

#[derive(Default)]
struct State {
    /// `(name, type)` to the set as held.
    records: BTreeMap<(String, String), Json>,
    /// Each change and the polls it still answers `pending`.
    changes: Vec<(Json, u32)>,
    pending_next: u32,
    /// The public key (PKCS#1 DER) of the service account key, when one was made.
    public_key: Option<Vec<u8>>,
    issued: Vec<String>,
    token_lifetime: u64,
    faults: Vec<Fault>,
    seen: Vec<Seen>,
}

pub struct CloudDns {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl CloudDns {
    pub fn start() -> CloudDns {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the Cloud DNS stand-in");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            token_lifetime: 3600,
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        // The thread ends with the test process.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve(stream, port, &state));
            }
        });
        CloudDns { port, state }
    }

    /// The API root, for `endpoint_url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// `host:port`, for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A service account key in `dir/gcp.json` whose `token_uri` is this stand-in,
    /// with a fresh RSA key made by openssl; returns the file's path and its private
    /// key's PEM.
    pub fn service_account_key(&self, dir: &Path) -> (std::path::PathBuf, String) {
        super::require("openssl", "openssl");
        let pem_path = dir.join("sa.pem");
        let out = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&pem_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pem = std::fs::read_to_string(&pem_path).unwrap();
        std::fs::remove_file(&pem_path).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = STANDARD.decode(body).unwrap();
        let pair = ring::signature::RsaKeyPair::from_pkcs8(&der).expect("a PKCS#8 RSA key");
        self.lock().public_key = Some(
            ring::signature::KeyPair::public_key(&pair)
                .as_ref()
                .to_vec(),
        );
        let key = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "0123456789abcdef",
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": format!("http://127.0.0.1:{}/token", self.port),
        });
        let path = dir.join("gcp.json");
        std::fs::write(&path, key.to_string()).unwrap();
        (path, pem)
    }

    /// Puts `rrdatas` in the zone directly, as another writer would.
    pub fn put(&self, name: &str, record_type: &str, ttl: u32, rrdatas: &[&str]) {
        let name = absolute(name);
        let set = json!({"kind": "dns#resourceRecordSet", "name": name, "type": record_type,
                         "ttl": ttl, "rrdatas": rrdatas});
        self.lock()
            .records
            .insert((name, record_type.to_owned()), set);
    }

    /// The set held, as `(ttl, rrdatas)`.
    pub fn get(&self, name: &str, record_type: &str) -> Option<(u64, Vec<String>)> {
        let state = self.lock();
        let set = state
            .records
            .get(&(absolute(name), record_type.to_owned()))?;
        let rrdatas = set["rrdatas"].as_array().unwrap().iter();
        let rrdatas = rrdatas.map(|v| v.as_str().unwrap().to_owned()).collect();
        Some((set["ttl"].as_u64().unwrap(), rrdatas))
    }

    /// The next change stays `pending` for `polls` polls.
    pub fn pending_for(&self, polls: u32) {
        self.lock().pending_next = polls;
    }

    /// Tokens issued from now on expire after `secs`.
    pub fn token_lifetime(&self, secs: u64) {
        self.lock().token_lifetime = secs;
    }

    /// The next `times` requests `method` whose path contains `path` are refused so.
    pub fn fail(&self, method: &'static str, path: &'static str, times: u32, refusal: Refusal) {
        self.lock().faults.push(Fault {
            method,
            path,
            times,
            refusal,
        });
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// Requests `method` whose path contains `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        let state = self.lock();
        state
            .seen
            .iter()
            .filter(|s| s.method == method && s.path.contains(path))
            .count()
    }

    /// The access tokens issued so far.
    pub fn issued(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn absolute(name: &str) -> String {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    format!("{name}.")
}

fn serve(mut stream: TcpStream, port: u16, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Some((head, body)) = read_request(&mut stream) else {
        return;
    };
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or_default().to_owned();
    let path = words.next().unwrap_or_default().to_owned();
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let (status, answer, retry_after) = answer(&mut state, port, &method, &path, &head, &body);
    state.seen.push(Seen {
        method,
        path,
        body: body.clone(),
        status,
    });
    drop(state);
    let retry_after = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
    let reply = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json; charset=utf-8\r\n{retry_after}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        reason(status),
        answer.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

fn answer(
    state: &mut State,
    port: u16,
    method: &str,
    path: &str,
    head: &str,
    body: &str,
) -> (u16, String, Option<u32>) {
    if let Some(fault) = state
        .faults
        .iter_mut()
        .find(|f| f.times > 0 && f.method == method && path.contains(f.path))
    {
        fault.times -= 1;
        let refusal = &fault.refusal;
        let body = google_error(refusal.status, &refusal.reason, &refusal.message);
        return (refusal.status, body, refusal.retry_after);
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    if route == "/token" && method == "POST" {
        return match grant(state, port, body) {
            Ok(token) => (200, token, None),
            Err(why) => {
                let body = json!({"error": "invalid_grant", "error_description": why});
                (400, body.to_string(), None)
            }
        };
    }
    if route == "/computeMetadata/v1/instance/service-accounts/default/token" {
        if super::imds::header(head, "metadata-flavor") != Some("Google") {
            return (403, "Missing Metadata-Flavor:Google header.".into(), None);
        }
        if !query.contains("scopes=") || !percent_decode(query).contains(SCOPE) {
            return (400, format!("no scopes={SCOPE} in {query:?}"), None);
        }
        return (200, issue(state), None);
    }
    let authorized = super::imds::header(head, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| state.issued.iter().any(|i| i == t));
    if !authorized {
        let message = "Request had invalid authentication credentials. Expected OAuth 2 access \
                       token, login cookie or other valid authentication credential.";
        return (401, google_error(401, "authError", message), None);
    }
    let prefix = format!("/dns/v1/projects/{PROJECT}/managedZones/{ZONE}/");
    let Some(rest) = route.strip_prefix(&prefix) else {
        let message =
            format!("The 'parameters.managedZone' resource named '{route}' does not exist.");
        return (404, google_error(404, "notFound", &message), None);
    };
    match (method, rest) {
        ("GET", "rrsets") => (200, list(state, query), None),
        ("POST", "changes") => match apply(state, body) {
            Ok(change) => (200, change, None),
            Err((status, reason, message)) => {
                (status, google_error(status, reason, &message), None)
            }
        },
        ("GET", id) if id.starts_with("changes/") => {
            let id = &id["changes/".len()..];
            match state.changes.iter_mut().find(|(c, _)| c["id"] == id) {
                Some((change, pending)) => {
                    change["status"] = if *pending > 0 { "pending" } else { "done" }.into();
                    *pending = pending.saturating_sub(1);
                    (200, change.to_string(), None)
                }
                None => {
                    let message =
                        format!("The 'parameters.changeId' resource named '{id}' does not exist.");
                    (404, google_error(404, "notFound", &message), None)
                }
            }
        }
        _ => (404, google_error(404, "notFound", "Not Found"), None),
    }
}

fn list(state: &State, query: &str) -> String {
    let query = percent_decode(query);
    let param = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_owned))
    };
    let (name, record_type) = (param("name").map(|n| absolute(&n)), param("type"));
    let rrsets: Vec<&Json> = state
        .records
        .iter()
        .filter(|((n, t), _)| {
            name.as_ref().is_none_or(|want| want == n)
                && record_type.as_ref().is_none_or(|want| want == t)
        })
        .map(|(_, set)| set)
        .collect();
    json!({"kind": "dns#resourceRecordSetsListResponse", "rrsets": rrsets}).to_string()
}

/// A `Change`, applied whole or refused: (status, reason, message).
fn apply(state: &mut State, body: &str) -> Result<String, (u16, &'static str, String)> {
    let change: Json = serde_json::from_str(body).map_err(|e| {
        (
            400,
            "parseError",
            format!("This API does not support parsing: {e}"),
        )
    })?;
    let empty = Vec::new();
    let deletions = change["deletions"].as_array().unwrap_or(&empty);
    let additions = change["additions"].as_array().unwrap_or(&empty);
    let mut records = state.records.clone();
    for (i, deletion) in deletions.iter().enumerate() {
        let key = key_of(deletion);
        let held = records.get(&key);
        let matches = held.is_some_and(|h| {
            h["name"] == deletion["name"]
                && h["type"] == deletion["type"]
                && h["ttl"] == deletion["ttl"]
                && h["rrdatas"] == deletion["rrdatas"]
        });
        if !matches {
            let message = format!("Precondition not met for 'entity.change.deletions[{i}]'");
            return Err((412, "conditionNotMet", message));
        }
        records.remove(&key);
    }
    for (i, addition) in additions.iter().enumerate() {
        let key = key_of(addition);
        if records.contains_key(&key) {
            let message = format!(
                "The resource 'entity.change.additions[{i}]' named '{} ({})' already exists",
                key.0, key.1
            );
            return Err((409, "alreadyExists", message));
        }
        let mut set = addition.clone();
        set["kind"] = "dns#resourceRecordSet".into();
        records.insert(key, set);
    }
    state.records = records;
    let id = (state.changes.len() + 1).to_string();
    let pending = std::mem::take(&mut state.pending_next);
    let answer = json!({
        "kind": "dns#change",
        "id": id,
        "status": if pending > 0 { "pending" } else { "done" },
        "startTime": "2026-12-06T12:00:00.000Z",
        "additions": additions,
        "deletions": deletions,
    });
    state.changes.push((answer.clone(), pending));
    Ok(answer.to_string())
}

fn key_of(set: &Json) -> (String, String) {
    (
        set["name"].as_str().unwrap_or_default().to_owned(),
        set["type"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The JWT-bearer grant: a token for a well-signed assertion of the key's account.
fn grant(state: &mut State, port: u16, body: &str) -> Result<String, String> {
    let form = percent_decode(&body.replace('+', " "));
    let field = |key: &str| {
        form.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")).map(str::to_owned))
    };
    if field("grant_type").as_deref() != Some(GRANT_TYPE) {
        return Err("Invalid grant_type".into());
    }
    let assertion = field("assertion").ok_or("Missing assertion")?;
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("Invalid JWT".into());
    };
    // base64url without padding (RFC 7515); tame-oauth 0.10 writes the signature in
    // the standard alphabet, which Google's endpoint takes too, so both are read.
    let decode = |part: &str| {
        let url_safe = part
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        URL_SAFE_NO_PAD.decode(url_safe).map_err(|e| e.to_string())
    };
    let header: Json = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims_json: Json = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    if header["alg"] != "RS256" {
        return Err("Invalid JWT: alg".into());
    }
    let public_key = state.public_key.as_ref().ok_or("No key")?;
    let signed = &assertion[..assertion.len() - signature.len() - 1];
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key,
    )
    .verify(signed.as_bytes(), &decode(signature)?)
    .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let aud = format!("http://127.0.0.1:{port}/token");
    if claims_json["iss"] != CLIENT_EMAIL
        || claims_json["aud"] != aud.as_str()
        || claims_json["exp"].as_i64().unwrap_or(0) <= now
        || !claims_json["scope"]
            .as_str()
            .unwrap_or_default()
            .split(' ')
            .any(|s| s == SCOPE)
    {
        return Err(format!("Invalid JWT: claims {claims_json}"));
    }
    Ok(issue(state))
}

fn issue(state: &mut State) -> String {
    let token = format!("ya29.stand-in-token-{:04}", state.issued.len() + 1);
    state.issued.push(token.clone());
    json!({"access_token": token, "expires_in": state.token_lifetime, "token_type": "Bearer"})
        .to_string()
}

fn google_error(code: u16, reason: &str, message: &str) -> String {
    let status = match code {
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        _ => "UNKNOWN",
    };
    json!({"error": {"code": code, "message": message, "status": status,
                     "errors": [{"domain": "global", "reason": reason, "message": message}]}})
    .to_string()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        _ => "Internal Server Error",
    }
}

/// The head and the body (by `Content-Length`).
fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let length: usize = super::imds::header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((
        head,
        String::from_utf8_lossy(&buf[end..end + length]).into_owned(),
    ))
}
