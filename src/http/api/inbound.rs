//! The webhook door of intake: a mail provider posts each raw message to help@, signed with
//! the shared secret. The signature is checked before the message is read.

use poem::web::Data;
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::Header,
    payload::{Binary, Json},
};

use super::ApiTags;
use crate::{
    domain::IntakeDoor,
    http::error::ApiResult,
    services::intake::{self, Received},
    state::AppState,
};

/// Where the webhook listens: its body may be as large as a message (`intake`'s limit), not
/// just the API's usual limit.
pub const PATH: &str = "/api/v1/inbound/email";

pub struct InboundApi;

#[derive(Enum, Clone, Copy)]
#[oai(rename_all = "lowercase")]
pub enum OutcomeName {
    /// A new ticket.
    Opened,
    /// The message came before (same Message-ID); its ticket.
    Duplicate,
    /// A reply to a ticket: kept with it.
    Attached,
    /// An auto-reply or a bounce: no ticket.
    Ignored,
}

/// What became of the message.
#[derive(Object)]
pub struct InboundOutcome {
    pub outcome: OutcomeName,
    /// The ticket's reference; `null` when the message was ignored.
    #[oai(nullable)]
    pub reference: Option<String>,
    /// Why it was ignored; `null` otherwise.
    #[oai(nullable)]
    pub reason: Option<String>,
}

#[derive(ApiResponse)]
enum InboundResponse {
    /// A new ticket; its acknowledgement is on its way to the sender.
    #[oai(status = 201)]
    Created(Json<InboundOutcome>),
    /// No new ticket: a message seen before, a reply kept with its ticket, or a message no
    /// person wrote.
    #[oai(status = 200)]
    Ok(Json<InboundOutcome>),
}

#[OpenApi(tag = "ApiTags::Inbound")]
impl InboundApi {
    /// Receive one raw RFC 5322 message (any content type, e.g. `message/rfc822`), at most
    /// 10 MiB. `X-Erasure-Signature: sha256=<hex HMAC-SHA256 of the body>` under
    /// `support.inbound_secret`, or `401 signature_invalid`. A message that is not readable as
    /// mail gets `422 invalid_input` and is kept for an admin; no ticket is made.
    #[oai(
        path = "/v1/inbound/email",
        method = "post",
        operation_id = "receiveInboundEmail"
    )]
    async fn receive(
        &self,
        state: Data<&AppState>,
        /// `sha256=` and the hex HMAC-SHA256 of the exact body.
        #[oai(name = "X-Erasure-Signature")]
        signature: Header<Option<String>>,
        message: Binary<Vec<u8>>,
    ) -> ApiResult<InboundResponse> {
        let support = &state.settings.support;
        intake::check_signature(&support.inbound_secret, signature.0.as_deref(), &message)?;
        let received = intake::receive(state.env(), state.intake(IntakeDoor::Webhook), &message).await?;
        Ok(match received {
            Received::Opened(reference) => InboundResponse::Created(Json(InboundOutcome {
                outcome: OutcomeName::Opened,
                reference: Some(reference.as_str().to_owned()),
                reason: None,
            })),
            Received::Duplicate(reference) => InboundResponse::Ok(Json(InboundOutcome {
                outcome: OutcomeName::Duplicate,
                reference: Some(reference.as_str().to_owned()),
                reason: None,
            })),
            Received::Attached(reference) => InboundResponse::Ok(Json(InboundOutcome {
                outcome: OutcomeName::Attached,
                reference: Some(reference.as_str().to_owned()),
                reason: None,
            })),
            Received::Ignored(why) => InboundResponse::Ok(Json(InboundOutcome {
                outcome: OutcomeName::Ignored,
                reference: None,
                reason: Some(why.to_owned()),
            })),
        })
    }
}
