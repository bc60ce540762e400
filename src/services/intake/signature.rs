//! The webhook door's proof of origin: `X-Erasure-Signature: sha256=<hex>`, the HMAC-SHA256
//! of the exact body under the configured secret, compared in constant time. A replayed body
//! proves nothing new: it is the same message, and makes no second ticket.

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use crate::error::{AppError, AppResult};

pub const SIGNATURE_HEADER: &str = "X-Erasure-Signature";

const SCHEME: &str = "sha256=";

fn mac(secret: &str) -> AppResult<Hmac<Sha256>> {
    Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(AppError::internal)
}

/// Passes when `header` signs `body` under `secret`. With no secret configured the door is
/// off, and every call is refused the same way.
pub fn check_signature(secret: &SecretString, header: Option<&str>, body: &[u8]) -> AppResult<()> {
    let secret = secret.expose_secret();
    if secret.is_empty() {
        tracing::warn!("inbound mail refused: support.inbound_secret is not set, so the webhook is off");
        return Err(AppError::SignatureInvalid);
    }
    let claimed = header
        .map(str::trim)
        .and_then(|h| {
            h.get(..SCHEME.len())
                .filter(|s| s.eq_ignore_ascii_case(SCHEME))
                .map(|_| &h[SCHEME.len()..])
        })
        .and_then(|hex| hex::decode(hex).ok())
        .ok_or(AppError::SignatureInvalid)?;
    let mut expected = mac(secret)?;
    expected.update(body);
    expected
        .verify_slice(&claimed)
        .map_err(|_| AppError::SignatureInvalid)
}

/// The header value that signs `body`: what a provider (or a test) sends.
pub fn sign(secret: &str, body: &[u8]) -> AppResult<String> {
    let mut signing = mac(secret)?;
    signing.update(body);
    Ok(format!(
        "{SCHEME}{}",
        hex::encode(signing.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn a_body_signed_with_the_secret_passes() {
        let header = sign("s3cret", b"From: a@b.example\r\n\r\nhi").unwrap();
        assert!(check_signature(&secret("s3cret"), Some(&header), b"From: a@b.example\r\n\r\nhi").is_ok());
        assert!(
            check_signature(
                &secret("s3cret"),
                Some(&header.to_uppercase().replace("SHA256=", "sha256=")),
                b"From: a@b.example\r\n\r\nhi"
            )
            .is_ok()
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let body = b"From: a@b.example\r\n\r\nhi";
        let good = sign("s3cret", body).unwrap();
        for header in [
            None,
            Some(""),
            Some("sha256="),
            Some("sha1=00"),
            Some(&good[SCHEME.len()..]),
            Some("sha256=zz"),
        ] {
            assert!(
                matches!(
                    check_signature(&secret("s3cret"), header, body),
                    Err(AppError::SignatureInvalid)
                ),
                "{header:?}"
            );
        }
        // Another secret, another body, or no secret at all.
        assert!(check_signature(&secret("other"), Some(&good), body).is_err());
        assert!(check_signature(&secret("s3cret"), Some(&good), b"From: a@b.example\r\n\r\nhi!").is_err());
        assert!(check_signature(&secret(""), Some(&sign("", body).unwrap()), body).is_err());
    }

    proptest! {
        #[test]
        fn one_flipped_bit_of_the_body_is_refused(body in proptest::collection::vec(any::<u8>(), 1..512), at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let header = sign("k", &body).unwrap();
            let mut tampered = body.clone();
            let i = at.index(tampered.len());
            tampered[i] ^= 1 << bit;
            prop_assert!(check_signature(&secret("k"), Some(&header), &tampered).is_err());
            prop_assert!(check_signature(&secret("k"), Some(&header), &body).is_ok());
        }
    }
}
