//! A scripted OpenAI-compatible server on 127.0.0.1 (no real Azure OpenAI installs
//! here): it serves Azure's `/openai/deployments/{deployment}/chat/completions
//! ?api-version=...` (with an `api-key` header) and `/v1/chat/completions` (bearer
//! token), answers from a per-test script, and records every request so tests can
//! assert the evidence, the schema and the headers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A chat completion whose message content is this text.
    Content(String),
    /// An HTTP error with this status and body (OpenAI's error JSON for 4xx).
    Status(u16, String),
    /// Wait, then answer a hold.
    Stall(Duration),
}

impl Reply {
    /// A well-formed answer.
    pub fn advice(recommendation: &str, target: Option<&str>, confidence: f64) -> Reply {
        Reply::Content(
            json!({
                "recommendation": recommendation,
                "target_dc": target,
                "confidence": confidence,
                "reasoning": "scripted reasoning",
                "impact": "scripted impact",
            })
            .to_string(),
        )
    }

    /// A throttled answer as OpenAI sends it.
    pub fn throttled() -> Reply {
        Reply::Status(
            429,
            json!({"error": {"message": "Rate limit reached; retry after 20 s",
                             "type": "rate_limit_error", "param": null, "code": "429"}})
            .to_string(),
        )
    }

    /// A server error with a plain body.
    pub fn server_error() -> Reply {
        Reply::Status(500, "upstream model crashed".into())
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path without the query.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The evidence JSON of the user message (after its first line).
    pub fn evidence(&self) -> Value {
        let text = self.body["messages"][1]["content"]
            .as_str()
            .expect("a user message with text");
        let json = text.split_once('\n').expect("a heading line").1;
        serde_json::from_str(json).expect("the evidence is JSON")
    }
}

#[derive(Debug, Default)]
struct Shared {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

/// The server; it stops with the test's runtime.
#[derive(Debug, Clone)]
pub struct ScriptedOpenAi {
    pub addr: SocketAddr,
    /// Accepted as `api-key` (Azure) and as `Authorization: Bearer` (`/v1`).
    pub key: String,
    shared: Arc<Shared>,
}

impl ScriptedOpenAi {
    /// Starts on a free loopback port, answering `script` in order (then holds).
    pub async fn start(key: &str, script: impl IntoIterator<Item = Reply>) -> Self {
        let shared = Arc::new(Shared {
            script: Mutex::new(script.into_iter().collect()),
            seen: Mutex::new(Vec::new()),
        });
        let state = (shared.clone(), key.to_owned());
        let app = Router::new()
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(azure),
            )
            .route("/v1/chat/completions", post(plain))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            addr,
            key: key.into(),
            shared,
        }
    }

    /// Azure's endpoint (`https://{resource}.openai.azure.com` in production).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An OpenAI-compatible base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn push(&self, reply: Reply) {
        self.shared.script.lock().unwrap().push_back(reply);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

type St = (Arc<Shared>, String);

async fn azure(
    State((shared, key)): State<St>,
    Path(deployment): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/openai/deployments/{deployment}/chat/completions");
    let authorized = headers.get("api-key").and_then(|v| v.to_str().ok()) == Some(key.as_str());
    let versioned = query.as_deref().is_some_and(|q| q.contains("api-version="));
    answer(&shared, path, query, headers, body, authorized && versioned).await
}

async fn plain(
    State((shared, key)): State<St>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bearer = format!("Bearer {key}");
    let authorized =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(bearer.as_str());
    let path = "/v1/chat/completions".to_owned();
    answer(&shared, path, query, headers, body, authorized).await
}

async fn answer(
    shared: &Shared,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
    authorized: bool,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("unknown").to_owned();
    shared.seen.lock().unwrap().push(Seen {
        path,
        query,
        headers,
        body,
    });
    if !authorized {
        let e = json!({"error": {"message": "Access denied: invalid key or api-version",
                                 "type": "invalid_request_error", "param": null, "code": "401"}});
        return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
    }
    let reply = shared.script.lock().unwrap().pop_front();
    let reply = reply.unwrap_or_else(|| Reply::advice("hold", None, 0.5));
    let content = match reply {
        Reply::Content(c) => c,
        Reply::Status(status, body) => {
            let status = StatusCode::from_u16(status).expect("a status");
            return (status, body).into_response();
        }
        Reply::Stall(d) => {
            tokio::time::sleep(d).await;
            "{\"recommendation\":\"hold\",\"target_dc\":null,\"confidence\":0.5,\
             \"reasoning\":\"late\",\"impact\":\"late\"}"
                .into()
        }
    };
    let completion = json!({
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280}
    });
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        completion.to_string(),
    )
        .into_response()
}
