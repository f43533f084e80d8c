//! Errors as answers: a JSON body `{"error": code, "detail": text}` with
//! the status that says whose problem it is, and for 401/403 the
//! `WWW-Authenticate` challenge of RFC 6750. No answer carries a token.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::Denied;

pub struct Failure {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl Failure {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn internal(error: &anyhow::Error) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            crate::errors::one_line(error),
        )
    }
}

impl From<Denied> for Failure {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthenticated(detail) => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_token", detail)
            }
            Denied::Forbidden(detail) => {
                Self::new(StatusCode::FORBIDDEN, "insufficient_scope", detail)
            }
            Denied::Unavailable(detail) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "auth_unavailable", detail)
            }
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.code, "detail": self.detail }));
        let mut response = (self.status, body).into_response();
        if matches!(
            self.status,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
        ) {
            // Quotes would end the parameter early.
            let description = self.detail.replace('"', "'");
            let challenge = format!(
                "Bearer error=\"{}\", error_description=\"{description}\"",
                self.code
            );
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}
