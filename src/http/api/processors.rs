//! The downstream processors' notices of completed deletions: each delivery's state (agents
//! and admins see the dead ones to act on them), and how each processor answers (auditors).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query, payload::Json};

use super::{
    ApiTags,
    auth::{Agent, Auditor, Staff},
};
use crate::{
    http::error::ApiResult,
    services::processors::{self, DeliveryState},
    state::AppState,
};

pub struct ProcessorsApi;

/// One processor's notice of one deletion. Names no person.
#[derive(Object)]
pub struct DeliveryView {
    /// The webhook's `id`.
    pub id: String,
    pub request_id: String,
    pub processor: String,
    /// waiting | acknowledged | dead
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
    #[oai(nullable)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last answer; `null` when none came.
    #[oai(nullable)]
    pub last_status: Option<i32>,
    #[oai(nullable)]
    pub last_error: Option<String>,
    #[oai(nullable)]
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// How one processor answers its notices.
#[derive(Object)]
pub struct StandingView {
    pub processor: String,
    /// Whether it is still in `notify.processors_file`.
    pub configured: bool,
    pub offered: u64,
    pub acknowledged: u64,
    pub dead: u64,
    /// Offered notices and never acknowledged one.
    pub never_acknowledged: bool,
    /// The oldest notice it has not acknowledged; `null` when none waits.
    #[oai(nullable)]
    pub waiting_since: Option<DateTime<Utc>>,
}

#[derive(ApiResponse)]
enum DeliveriesResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<DeliveryView>>),
}

#[derive(ApiResponse)]
enum StandingResponse {
    #[oai(status = 200)]
    Ok(Json<Vec<StandingView>>),
}

#[OpenApi(tag = "ApiTags::Processors")]
impl ProcessorsApi {
    /// The processors' notices, newest first: all, or those in one state (`dead`: the last
    /// attempt failed; `erasure jobs retry` sends it again). Agents and admins. `422
    /// invalid_input` for an unknown state.
    #[oai(
        path = "/v1/processors/deliveries",
        method = "get",
        operation_id = "listProcessorDeliveries"
    )]
    async fn deliveries(
        &self,
        state: Data<&AppState>,
        _agent: Staff<Agent>,
        /// waiting | acknowledged | dead
        #[oai(name = "state")]
        delivery_state: Query<Option<String>>,
        /// At most this many (default 100).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> ApiResult<DeliveriesResponse> {
        let wanted = delivery_state
            .0
            .as_deref()
            .map(DeliveryState::parse)
            .transpose()?;
        let found = processors::deliveries(&state.db, wanted, limit.0.unwrap_or(100)).await?;
        Ok(DeliveriesResponse::Ok(Json(
            found
                .into_iter()
                .map(|d| DeliveryView {
                    state: DeliveryState::of(&d).as_str().to_owned(),
                    id: d.id,
                    request_id: d.request_id,
                    processor: d.processor,
                    created_at: d.created_at,
                    attempts: d.attempts,
                    last_attempt_at: d.last_attempt_at,
                    last_status: d.last_status,
                    last_error: d.last_error,
                    acknowledged_at: d.acknowledged_at,
                })
                .collect(),
        )))
    }

    /// How each processor answers: offered, acknowledged, dead, and the oldest notice it has
    /// not acknowledged. Auditors and admins.
    #[oai(path = "/v1/processors", method = "get", operation_id = "listProcessors")]
    async fn standing(
        &self,
        state: Data<&AppState>,
        _auditor: Staff<Auditor>,
    ) -> ApiResult<StandingResponse> {
        let configured: Vec<String> = state.processors.iter().map(|p| p.name.clone()).collect();
        let found = processors::standing(&state.db, &configured).await?;
        Ok(StandingResponse::Ok(Json(
            found
                .into_iter()
                .map(|s| StandingView {
                    never_acknowledged: s.never_acknowledged(),
                    processor: s.processor,
                    configured: s.configured,
                    offered: s.offered,
                    acknowledged: s.acknowledged,
                    dead: s.dead,
                    waiting_since: s.waiting_since,
                })
                .collect(),
        )))
    }
}
