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
        }
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
            Error::Unauthenticated => (S::UNAUTHORIZED, "not_authenticated"),
            Error::TokenExpired => (S::UNAUTHORIZED, "token_expired"),
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
            Error::TooManyAttempts(_) => (S::TOO_MANY_REQUESTS, "too_many_attempts"),
            Error::Unexpected(cause) => {
                tracing::error!(error = ?cause, "request failed");
                return Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "Something went wrong on our side.",
                );
            }
        };
        Self::new(status, code, e.to_string())
    }
}

impl Scribe for ApiError {
    fn render(self, res: &mut Response) {
        if self.status == StatusCode::UNAUTHORIZED {
            let _ = res.add_header("www-authenticate", "Bearer", true);
        }
        res.status_code(self.status);
        res.render(Json(self.body()));
    }
}

impl EndpointOutRegister for ApiError {
    fn register(components: &mut Components, operation: &mut Operation) {
        for (status, what) in [
            ("400", "Malformed request"),
            ("401", "Missing, bad or expired token"),
            ("403", "Not allowed"),
            ("404", "Not found"),
            ("409", "Conflict"),
            ("422", "Invalid field"),
            ("429", "Too many failed logins"),
        ] {
            operation.responses.insert(
                status,
                oapi::Response::new(what)
                    .add_content("application/json", ErrorBody::to_schema(components)),
            );
        }
    }
}

/// Renders salvo's own refusals (unknown route, wrong method, ...) in the API's error shape.
#[handler]
pub async fn catch_status(res: &mut Response, ctrl: &mut FlowCtrl) {
    let status = res.status_code.unwrap_or(StatusCode::NOT_FOUND);
    if status.is_client_error() || status.is_server_error() {
        let e = ApiError::for_status(status);
        res.status_code(status);
        res.render(Json(e.body()));
        ctrl.skip_rest();
    }
}
