//! The one place where errors become HTTP responses: a status, a `{"detail", "code"}` body
//! (plus `field` for a 422), and for 500s a log of the whole cause chain while the client
//! sees an opaque sentence.

use std::borrow::Cow;

use salvo::http::StatusCode;
use salvo::oapi::{self, Components, EndpointOutRegister, Operation, ToSchema};
use salvo::prelude::*;
use serde::Serialize;

use crate::domain::Error;

/// An error as the API shows it.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: Cow<'static, str>,
    pub field: Option<Cow<'static, str>>,
    /// For a refusal that passes with time (429), the seconds to wait: `Retry-After`.
    pub retry_after: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A sentence a person can read.
    pub detail: String,
    /// A stable snake_case code for programs.
    pub code: String,
    /// For 422: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For 500: the id of the request (also in the `X-Request-Id` header), which every log
    /// line about it carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 429 `rate_limited`, to be tried again in `retry_after` seconds.
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("Too many requests; try again in {} s.", retry_after.max(1)),
            )
        }
    }

    pub fn malformed(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_body", detail)
    }

    pub fn invalid(
        field: impl Into<Cow<'static, str>>,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            field: Some(field.into()),
            ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", detail)
        }
    }

    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            detail: self.detail.to_string(),
            code: self.code.to_owned(),
            field: self.field.as_ref().map(ToString::to_string),
            request_id: None,
        }
    }

    /// The body as sent in answer to the request of `res`: a 500 names the request's id.
    fn body_for(&self, res: &Response) -> ErrorBody {
        let mut body = self.body();
        if self.status.is_server_error() {
            body.request_id = super::request_id::of(res);
        }
        body
    }

    /// The error for a bare status, used when salvo itself refuses a request.
    pub fn for_status(status: StatusCode) -> Self {
        let (code, detail) = match status {
            StatusCode::NOT_FOUND => ("not_found", "Not found."),
            StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "Method not allowed."),
            StatusCode::PAYLOAD_TOO_LARGE => {
                ("payload_too_large", "The request body is too large.")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ("unsupported_media_type", "Unsupported content type.")
            }
            StatusCode::UNAUTHORIZED => ("not_authenticated", "Not authenticated."),
            StatusCode::FORBIDDEN => ("forbidden", "Forbidden."),
            StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "Too many requests; slow down."),
            s if s.is_client_error() => ("bad_request", "Bad request."),
            _ => ("internal_error", "Something went wrong on our side."),
        };
        Self::new(status, code, detail)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let (status, code) = match &e {
            Error::Invalid(v) => return Self::invalid(v.field.clone(), v.message.clone()),
            Error::UsernameTaken => (S::CONFLICT, "username_taken"),
            Error::EmailTaken => (S::CONFLICT, "email_taken"),
            Error::InvalidCredentials => (S::UNAUTHORIZED, "invalid_credentials"),
            Error::AccountDisabled => (S::FORBIDDEN, "account_disabled"),
            Error::Unauthenticated => (S::UNAUTHORIZED, "not_authenticated"),
            Error::TokenExpired => (S::UNAUTHORIZED, "token_expired"),
            Error::RefreshTokenReused => (S::UNAUTHORIZED, "refresh_token_reused"),
            Error::WrongPassword => (S::FORBIDDEN, "wrong_password"),
            Error::SessionNotFound => (S::NOT_FOUND, "session_not_found"),
            Error::UserNotFound => (S::NOT_FOUND, "user_not_found"),
            Error::ChatNotFound => (S::NOT_FOUND, "chat_not_found"),
            Error::MessageNotFound => (S::NOT_FOUND, "message_not_found"),
            Error::MessageDeleted => (S::CONFLICT, "message_deleted"),
            Error::EditWindowPassed => (S::FORBIDDEN, "edit_window_passed"),
            Error::TooManyReactions => (S::CONFLICT, "too_many_reactions"),
            Error::NotAMember => (S::FORBIDDEN, "not_a_member"),
            Error::ChatWithSelf => (S::BAD_REQUEST, "chat_with_self"),
            Error::Forbidden(_) => (S::FORBIDDEN, "forbidden"),
            Error::Conflict(_) => (S::CONFLICT, "conflict"),
            Error::TooManyAttempts { .. } => (S::TOO_MANY_REQUESTS, "too_many_attempts"),
            Error::RateLimited { .. } => (S::TOO_MANY_REQUESTS, "rate_limited"),
            Error::Unexpected(cause) => {
                tracing::error!(error = ?cause, "request failed");
                return Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side.",
                );
            }
        };
        Self {
            retry_after: e.retry_after_secs(),
            ..Self::new(status, code, e.to_string())
        }
    }
}

impl Scribe for ApiError {
    fn render(self, res: &mut Response) {
        if self.status.is_client_error() {
            metrics::counter!("parley_refusals_total", "code" => self.code).increment(1);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            let _ = res.add_header("www-authenticate", "Bearer", true);
        }
        if let Some(secs) = self.retry_after {
            let _ = res.add_header("retry-after", secs, true);
        }
        res.status_code(self.status);
        let body = self.body_for(res);
        res.render(Json(body));
    }
}

impl EndpointOutRegister for ApiError {
    /// Every error status an endpoint may answer; each endpoint's `status_codes` keeps the
    /// ones it does.
    fn register(components: &mut Components, operation: &mut Operation) {
        for (status, what) in [
            (
                "400",
                "`malformed_body`: the body is not JSON; or a request that cannot be met",
            ),
            ("401", "Missing, bad or expired token, or wrong credentials"),
            ("403", "Not allowed, or from an origin that is not"),
            ("404", "Not found"),
            ("409", "Conflict"),
            ("413", "`payload_too_large`: the body is over 64 KiB"),
            ("422", "`invalid_field`: the body names the field at fault"),
            ("429", "Too many failed logins or requests; see Retry-After"),
            ("500", "Unexpected failure; the body names the request id"),
            ("503", "`not_ready`"),
        ] {
            let mut response = oapi::Response::new(what)
                .add_content("application/json", ErrorBody::to_schema(components));
            let integer = || oapi::Object::with_type(oapi::BasicType::Integer).minimum(1);
            let text = || oapi::Object::with_type(oapi::BasicType::String);
            match status {
                "401" => {
                    response = response.add_header(
                        "WWW-Authenticate",
                        oapi::Header::new(text()).description("`Bearer`"),
                    );
                }
                "429" => {
                    response = response.add_header(
                        "Retry-After",
                        oapi::Header::new(integer())
                            .required(true)
                            .description("Seconds to wait before trying again."),
                    );
                }
                _ => {}
            }
            operation.responses.insert(status, response);
        }
    }
}

/// Renders salvo's own refusals (unknown route, wrong method, a rate limiter's 429, ...) in
/// the API's error shape.
#[handler]
pub async fn catch_status(res: &mut Response, ctrl: &mut FlowCtrl) {
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    if status.is_client_error() || status.is_server_error() {
        let e = if status == StatusCode::TOO_MANY_REQUESTS {
            ApiError::rate_limited(super::limits::retry_after(res.headers()))
        } else {
            ApiError::for_status(status)
        };
        res.status_code(status);
        if let Some(secs) = e.retry_after {
            let _ = res.add_header("retry-after", secs, true);
        }
        let body = e.body_for(res);
        res.render(Json(body));
        ctrl.skip_rest();
    }
}
