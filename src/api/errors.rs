//! Every error this server answers is JSON (`{"error": "..."}`): the limits' own answers
//! (408, 413), a handler's panic (500), and axum's extractor rejections (plain text by
//! default: a path that is not UTF-8, a bad query string, a body over the limit).

use std::any::Any;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

use super::counters::HttpMetrics;
use crate::config::HttpLimits;

/// The most of a plain-text error body turned into a JSON message, in bytes.
const MAX_MESSAGE: usize = 4096;

/// 408 and 413 from the timeout and body-limit layers, as JSON, counted.
pub(super) async fn json_limit_errors<B>(
    State((limits, metrics)): State<(HttpLimits, HttpMetrics)>,
    response: axum::http::Response<B>,
) -> Response
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let response = response.map(Body::new);
    let (reason, message) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body_too_large",
            format!(
                "the request body is larger than {} bytes (limits.http.max_body_bytes)",
                limits.max_body_bytes
            ),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "timeout",
            format!(
                "the request took longer than {} s (limits.http.request_timeout)",
                limits.request_timeout.as_secs_f64()
            ),
        ),
        _ => return response,
    };
    if is_json(response.headers()) {
        return response;
    }
    metrics.request_error(reason);
    (response.status(), Json(json!({ "error": message }))).into_response()
}

/// A handler that panicked: 500 with a JSON body, logged, counted. The connection stays
/// answered, so a client (Alertmanager) sees a server error rather than a reset.
pub(super) fn panic_response(
    metrics: HttpMetrics,
) -> impl Fn(Box<dyn Any + Send>) -> Response + Clone {
    move |panic: Box<dyn Any + Send>| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        metrics.request_error("panic");
        error!(panic = %detail, "an HTTP handler panicked; answered 500");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "error": "internal error" })),
        )
            .into_response()
    }
}

/// A client error (4xx) that is not JSON, as the status and its message; `None` for
/// anything else. Axum's rejections say what is wrong in plain text.
pub(super) async fn plain_client_error(
    response: Response,
) -> Result<(StatusCode, HeaderMap, String), Response> {
    let status = response.status();
    if !status.is_client_error() || is_json(response.headers()) {
        return Err(response);
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_MESSAGE)
        .await
        .map(|b: Bytes| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned()
    } else {
        text
    };
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_TYPE);
    headers.remove(header::CONTENT_LENGTH);
    Ok((status, headers, message))
}

/// Middleware: every plain-text client error as `{"error": "..."}`.
pub(super) async fn json_client_errors(request: Request, next: Next) -> Response {
    match plain_client_error(next.run(request).await).await {
        Ok((status, headers, message)) => {
            (status, headers, Json(json!({ "error": message }))).into_response()
        }
        Err(response) => response,
    }
}

/// Reads a request body of at most `limits.max_body_bytes`; the error answer is 413 JSON
/// (counted) or 400 for a body that broke off.
pub(super) async fn read_body(
    body: Body,
    limits: &HttpLimits,
    metrics: &HttpMetrics,
) -> Result<Bytes, (StatusCode, String)> {
    axum::body::to_bytes(body, limits.max_body_bytes)
        .await
        .map_err(|e| {
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            let mut too_large = false;
            while let Some(c) = cause {
                too_large |= c.is::<http_body_util::LengthLimitError>();
                cause = c.source();
            }
            if too_large {
                metrics.request_error("body_too_large");
                (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "the request body is larger than {} bytes (limits.http.max_body_bytes)",
                        limits.max_body_bytes
                    ),
                )
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read".to_owned(),
                )
            }
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::http::Request;
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_json_500_and_counted() {
        let metrics = HttpMetrics::default();
        let app = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response(metrics.clone())));
        let response = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(is_json(response.headers()));
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"error":"internal error"}"#);
    }

    #[tokio::test]
    async fn plain_text_client_errors_become_json_and_the_rest_stay() {
        let text = (StatusCode::BAD_REQUEST, "Invalid URL").into_response();
        let (status, _, message) = plain_client_error(text).await.unwrap();
        assert_eq!(
            (status, message.as_str()),
            (StatusCode::BAD_REQUEST, "Invalid URL")
        );
        let empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        let (_, _, message) = plain_client_error(empty).await.unwrap();
        assert_eq!(message, "Method Not Allowed");
        let ok = (StatusCode::OK, "fine").into_response();
        assert!(plain_client_error(ok).await.is_err());
    }
}
