//! The transparency log, for anyone: the newest signed head, consistency proofs between heads,
//! and the public key (also at `/.well-known/erasure-log-key`). No log-in: these prove, they
//! reveal nothing (leaves are pseudonymous, and only hashes are served here).

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, param::Query, payload::Json};

use super::ApiTags;
use crate::{
    http::error::ApiResult,
    services::ledger::{log, proofs},
    state::AppState,
    transparency::{ConsistencyDocument, PublishedKey, SignedHead},
};

pub struct LogApi;

#[derive(ApiResponse)]
enum HeadResponse {
    #[oai(status = 200)]
    Ok(Json<SignedHead>),
}

#[derive(ApiResponse)]
enum ConsistencyResponse {
    #[oai(status = 200)]
    Ok(Json<ConsistencyDocument>),
}

#[derive(ApiResponse)]
enum KeyResponse {
    #[oai(status = 200)]
    Ok(Json<PublishedKey>),
}

#[OpenApi(tag = "ApiTags::Log")]
impl LogApi {
    /// The newest signed tree head: the ledger's size and Merkle root, signed with the log
    /// key. Keep it: any later head can be proved to extend it. Signed now if the ledger has
    /// grown since the last one.
    #[oai(path = "/v1/log/head", method = "get", operation_id = "getLogHead")]
    async fn head(&self, state: Data<&AppState>) -> ApiResult<HeadResponse> {
        let newest = log::newest_head(&state.db.conn).await?;
        let size = log::size(&state.db.conn).await?;
        let head = match newest {
            Some(head) if head.size >= size => head,
            _ => log::sign_head(&state.db, &state.log_signer, state.clock.now()).await?,
        };
        Ok(HeadResponse::Ok(Json(head)))
    }

    /// The RFC 6962 proof that the log at `from` entries is a prefix of the log at `to`
    /// entries, with the head signed at `to`. `from` is the size of a head you kept; `to` that
    /// of a newer head. `404 not_found`: no head was signed at `to`; `422 invalid_input`:
    /// `from` is larger than `to`.
    #[oai(
        path = "/v1/log/consistency",
        method = "get",
        operation_id = "getLogConsistency"
    )]
    async fn consistency(
        &self,
        state: Data<&AppState>,
        #[oai(validator(minimum(value = "0"), maximum(value = "281474976710655")))] from: Query<u64>,
        #[oai(validator(minimum(value = "0"), maximum(value = "281474976710655")))] to: Query<u64>,
    ) -> ApiResult<ConsistencyResponse> {
        let document = proofs::consistency(&state.db, from.0, to.0).await?;
        Ok(ConsistencyResponse::Ok(Json(document)))
    }

    /// The Ed25519 public key that signs tree heads (the same document as
    /// `/.well-known/erasure-log-key`).
    #[oai(path = "/v1/log/key", method = "get", operation_id = "getLogKey")]
    async fn key(&self, state: Data<&AppState>) -> KeyResponse {
        KeyResponse::Ok(Json(state.log_signer.public().published()))
    }
}
