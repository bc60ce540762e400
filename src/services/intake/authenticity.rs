//! What DNS says about a message's sender: DKIM, SPF and DMARC (mail-auth). The results are
//! shown to the agent, for information; they never verify a ticket (a forwarded or re-signed
//! message can fail honestly, a look-alike domain can pass).
//!
//! Invariant: a check never holds a ticket up: DNS gets `timeout` for the three checks
//! together, and whatever did not answer is recorded as `temperror`. SPF needs the address of
//! the server that handed the message to us, which only our own MTA's `Received:` header
//! (the topmost) tells; without one SPF is `none`.

use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    time::{Duration, Instant},
};

use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, Parameters, ResolverCache,
    SpfResult, Txt,
    common::{parse::TxtRecordParser, verify::DomainKey},
    dmarc::{Dmarc, verify::DmarcParameters},
    hickory_resolver::{
        config::{ResolverConfig, ResolverOpts},
        proto::op::ResponseCode,
    },
    spf::{Spf, verify::SpfParameters},
};
use mail_parser::{Host, Message};

use crate::{config::MailAuthSettings, domain::AuthVerdict};

/// The three results, and the domain whose DKIM signature passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderAuthentication {
    pub dkim: AuthVerdict,
    pub dkim_domain: Option<String>,
    pub spf: AuthVerdict,
    pub dmarc: AuthVerdict,
}

/// Checks senders against DNS, or against records pinned in configuration first.
pub struct SenderChecks {
    authenticator: MessageAuthenticator,
    pinned: PinnedTxt,
    timeout: Duration,
}

impl std::fmt::Debug for SenderChecks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SenderChecks")
            .field("pinned", &self.pinned.0.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SenderChecks {
    pub fn from_settings(settings: &MailAuthSettings) -> anyhow::Result<Self> {
        let authenticator = match settings.resolver.as_str() {
            "system" => MessageAuthenticator::new_system_conf()?,
            // No name servers: every lookup not pinned fails at once, as `temperror`.
            "none" => MessageAuthenticator::new(
                ResolverConfig::from_parts(None, vec![], vec![]),
                ResolverOpts::default(),
            )?,
            other => anyhow::bail!("support.mail_auth.resolver is system or none, not {other:?}"),
        };
        Ok(Self {
            authenticator,
            pinned: PinnedTxt::parse(&settings.pinned_txt)?,
            timeout: Duration::from_millis(settings.timeout_ms),
        })
    }

    pub async fn check(&self, message: &Message<'_>, raw: &[u8]) -> SenderAuthentication {
        let unanswered = SenderAuthentication {
            dkim: AuthVerdict::TempError,
            dkim_domain: None,
            spf: AuthVerdict::TempError,
            dmarc: AuthVerdict::TempError,
        };
        tokio::time::timeout(self.timeout, self.check_unbounded(message, raw))
            .await
            .unwrap_or(unanswered)
    }

    async fn check_unbounded(&self, message: &Message<'_>, raw: &[u8]) -> SenderAuthentication {
        let authenticated = AuthenticatedMessage::from_parsed(message, raw, true);
        let dkim = self
            .authenticator
            .verify_dkim(Parameters::new(&authenticated).with_txt_cache(&self.pinned))
            .await;
        let passed = dkim.iter().find(|o| *o.result() == DkimResult::Pass);
        let dkim_verdict = match (passed, dkim.first()) {
            (Some(_), _) => AuthVerdict::Pass,
            (None, Some(first)) => dkim_verdict(first.result()),
            (None, None) => AuthVerdict::None,
        };
        let dkim_domain = passed.and_then(|o| o.signature()).map(|s| s.d.clone());

        let mail_from = envelope_sender(message);
        let mail_from_domain = mail_from.rsplit_once('@').map_or("", |(_, d)| d).to_owned();
        let spf = match relay(message) {
            Some((ip, helo)) => {
                self.authenticator
                    .verify_spf(
                        Parameters::new(SpfParameters::verify_mail_from(
                            ip,
                            &helo,
                            "localhost",
                            &mail_from,
                        ))
                        .with_txt_cache(&self.pinned),
                    )
                    .await
            }
            None => mail_auth::SpfOutput::new(mail_from_domain.clone()).with_result(SpfResult::None),
        };
        let dmarc = self
            .authenticator
            .verify_dmarc(
                Parameters::new(DmarcParameters::new(
                    &authenticated,
                    &dkim,
                    &mail_from_domain,
                    &spf,
                ))
                .with_txt_cache(&self.pinned),
            )
            .await;
        SenderAuthentication {
            dkim: dkim_verdict,
            dkim_domain,
            spf: spf_verdict(spf.result()),
            dmarc: dmarc_verdict(
                dmarc.dmarc_record().is_some(),
                dmarc.dkim_result(),
                dmarc.spf_result(),
            ),
        }
    }
}

/// The envelope sender our MTA recorded (Return-Path), else the From address.
fn envelope_sender(message: &Message<'_>) -> String {
    let address = |value: &mail_parser::HeaderValue<'_>| {
        value
            .as_address()
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_owned)
    };
    address(message.return_path())
        .or_else(|| {
            message
                .from()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_owned)
        })
        .or_else(|| {
            message
                .return_path()
                .as_text()
                .map(|t| t.trim_matches(['<', '>']).to_owned())
        })
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// The address and HELO name of the server that handed the message to ours: the topmost
/// `Received:` header, the one our MTA wrote.
fn relay(message: &Message<'_>) -> Option<(IpAddr, String)> {
    let received = message.received()?;
    let ip = received.from_ip()?;
    let helo = match received.from() {
        Some(Host::Name(name)) => name.to_string(),
        _ => ip.to_string(),
    };
    Some((ip, helo))
}

fn dkim_verdict(result: &DkimResult) -> AuthVerdict {
    match result {
        DkimResult::Pass => AuthVerdict::Pass,
        DkimResult::Neutral(_) => AuthVerdict::Neutral,
        DkimResult::Fail(_) => AuthVerdict::Fail,
        DkimResult::PermError(_) => AuthVerdict::PermError,
        DkimResult::TempError(_) => AuthVerdict::TempError,
        DkimResult::None => AuthVerdict::None,
    }
}

fn spf_verdict(result: SpfResult) -> AuthVerdict {
    match result {
        SpfResult::Pass => AuthVerdict::Pass,
        SpfResult::Fail => AuthVerdict::Fail,
        SpfResult::SoftFail => AuthVerdict::SoftFail,
        SpfResult::Neutral => AuthVerdict::Neutral,
        SpfResult::TempError => AuthVerdict::TempError,
        SpfResult::PermError => AuthVerdict::PermError,
        SpfResult::None => AuthVerdict::None,
    }
}

/// DMARC passes when either aligned identifier passes; with a policy record and neither
/// passing (nor unanswered), it fails; with no record there is nothing to fail (RFC 7489 §4.2,
/// §6.6.2).
fn dmarc_verdict(has_record: bool, dkim: &DmarcResult, spf: &DmarcResult) -> AuthVerdict {
    let one = |r: &DmarcResult| match r {
        DmarcResult::Pass => AuthVerdict::Pass,
        DmarcResult::Fail(_) => AuthVerdict::Fail,
        DmarcResult::TempError(_) => AuthVerdict::TempError,
        DmarcResult::PermError(_) => AuthVerdict::PermError,
        DmarcResult::None => AuthVerdict::None,
    };
    let (dkim, spf) = (one(dkim), one(spf));
    let found = [
        AuthVerdict::Pass,
        AuthVerdict::TempError,
        AuthVerdict::PermError,
        AuthVerdict::Fail,
    ]
    .into_iter()
    .find(|v| dkim == *v || spf == *v);
    match found {
        Some(verdict) => verdict,
        None if has_record => AuthVerdict::Fail,
        None => AuthVerdict::None,
    }
}

/// TXT records from configuration, consulted before DNS: for a domain whose DNS cannot be
/// reached from here, and for tests, which must not reach any.
struct PinnedTxt(HashMap<Box<str>, Txt>);

impl PinnedTxt {
    /// One record a line, `name record` (or `name NXDOMAIN`); blank lines and `#` comments
    /// are skipped.
    fn parse(records: &str) -> anyhow::Result<Self> {
        let mut pinned = HashMap::new();
        for line in records
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (name, value) = line.split_once(char::is_whitespace).ok_or_else(|| {
                anyhow::anyhow!("support.mail_auth.pinned_txt: {line:?} is not `name record`")
            })?;
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let bytes = value.trim().as_bytes();
            let refused = |e: mail_auth::Error| {
                anyhow::anyhow!("support.mail_auth.pinned_txt: the record of {name} is not one we read: {e}")
            };
            let txt: Txt = if value.trim().eq_ignore_ascii_case("NXDOMAIN") {
                // A name pinned as absent, e.g. `_dmarc.<tld>`, where DMARC's tree walk looks.
                Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
                    ResponseCode::NXDomain,
                )))
            } else if name.contains("._domainkey.") {
                DomainKey::parse(bytes).map_err(refused)?.into()
            } else if name.starts_with("_dmarc.") {
                Dmarc::parse(bytes).map_err(refused)?.into()
            } else {
                Spf::parse(bytes).map_err(refused)?.into()
            };
            pinned.insert(format!("{name}.").into_boxed_str(), txt);
        }
        Ok(Self(pinned))
    }
}

impl ResolverCache<Box<str>, Txt> for PinnedTxt {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.0.get(name).cloned()
    }

    fn remove<Q>(&self, _name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        None
    }

    // Pinned records are the only ones kept: the resolver caches what DNS answers.
    fn insert(&self, _key: Box<str>, _value: Txt, _valid_until: Instant) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmarc_passes_when_either_aligned_identifier_does() {
        let fail = || DmarcResult::Fail(mail_auth::Error::NotAligned);
        assert_eq!(
            dmarc_verdict(true, &DmarcResult::Pass, &fail()),
            AuthVerdict::Pass
        );
        assert_eq!(
            dmarc_verdict(true, &fail(), &DmarcResult::Pass),
            AuthVerdict::Pass
        );
        assert_eq!(
            dmarc_verdict(true, &fail(), &DmarcResult::None),
            AuthVerdict::Fail
        );
        // A policy and nothing aligned passing: fail; no policy: nothing to fail.
        assert_eq!(
            dmarc_verdict(true, &DmarcResult::None, &DmarcResult::None),
            AuthVerdict::Fail
        );
        assert_eq!(
            dmarc_verdict(false, &DmarcResult::None, &DmarcResult::None),
            AuthVerdict::None
        );
        let unanswered = DmarcResult::TempError(mail_auth::Error::NotAligned);
        assert_eq!(dmarc_verdict(true, &unanswered, &fail()), AuthVerdict::TempError);
    }

    #[test]
    fn pinned_records_must_parse() {
        assert!(PinnedTxt::parse("sel._domainkey.example.test v=DKIM1; k=ed25519; p=!!").is_err());
        assert!(PinnedTxt::parse("no-record-here").is_err());
        let pinned = PinnedTxt::parse("# ours\n\n_dmarc.Example.test. v=DMARC1; p=reject\n").unwrap();
        assert!(pinned.get("_dmarc.example.test.").is_some());
        assert!(pinned.get("example.test.").is_none());
    }
}
