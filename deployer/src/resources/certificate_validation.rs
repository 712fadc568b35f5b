//! A requested certificate being ISSUED: what the custom domain waits for.
//! ACM issues it only once its validation CNAME resolves (written by
//! `validation_record` when the stack names a hosted zone, by someone else
//! otherwise), which can take minutes or, without a record, forever.
//!
//! So this is a kind of its own, apart from `certificate`: the certificate
//! is requested (and its record written) early; this step waits for it up
//! to `apply --wait-for-certificate`; when the wait ends first, the step is
//! left for a later run ([`LeftForLater`]), not failed: what depends on the
//! certificate (the domain, its mapping, the alias records, execute-api
//! going off) waits with it, everything else is done, and `apply` exits 3.
//! The next `apply` finds it ISSUED, or waits again.
//!
//! Nothing is created or deleted: the state is the certificate's status,
//! observed with the certificate (no call of its own).

use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::certificate::{self, Certificate};
use super::kind::{Placement, Context, Diff, Found, Kind, KindIo, Ownership, Scope};
use crate::aws::Aws;
use crate::error::LeftForLater;
use crate::grants::{Grants, Statement};
use crate::plan::{Address, Outputs, Val};
use crate::retry;
use crate::stack::CertificateSpec;

pub struct CertificateValidation;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spec {
    pub domain: String,
    pub arn: Val,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub arn: String,
    pub status: String,
    /// The DNS records ACM waits for: (name, type, value).
    pub validation_records: Vec<(String, String, String)>,
}

/// What a certificate still waiting for its DNS validation waits for.
fn waiting(domain: &str, arn: &str, records: &[(String, String, String)]) -> LeftForLater {
    let records: Vec<String> = records.iter().map(|(n, t, v)| format!("      {n} {t} {v}")).collect();
    LeftForLater(format!(
        "certificate {arn} for {domain} is still waiting for DNS validation; once this record exists, run apply \
         again:\n{}",
        records.join("\n")
    ))
}

pub fn address(domain: &str) -> Address {
    Address::new(CertificateValidation::NAME, domain)
}

/// The ARN of the domain's certificate, once it can be used: a requested
/// one only once issued (this kind's output), one given by ARN as given.
pub fn arn(context: &Context<'_>) -> Option<Val> {
    let domain = context.stack.domain.as_ref()?;
    Some(match &domain.certificate {
        CertificateSpec::Existing(arn) => Val::Known(arn.clone()),
        CertificateSpec::Request => Val::output(address(&domain.name), "arn"),
    })
}

fn state(certificate: &certificate::State) -> State {
    State {
        arn: certificate.arn.clone(),
        status: certificate.status.clone(),
        validation_records: certificate.validation_records.clone(),
    }
}

/// Waits until the certificate is ISSUED, within `aws.certificate_wait`,
/// showing the validation records once; [`LeftForLater`] if it is not by then.
async fn wait_issued(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
    let arn = spec.arn.known()?;
    let shown_records = AtomicBool::new(false);
    let last = std::sync::Mutex::new(None);
    let waiting_for = format!("ACM to issue certificate {arn} (its DNS validation record must exist)");
    let issued = retry::wait_until(&waiting_for, aws.certificate_wait, || async {
        let now = certificate::describe(aws, arn).await?.with_context(|| format!("certificate {arn} vanished"))?;
        match now.status.as_str() {
            "ISSUED" => return Ok(Some(state(&now))),
            "PENDING_VALIDATION" | "" => {}
            other => anyhow::bail!("certificate {arn} is {other}"),
        }
        if !now.validation_records.is_empty() && !shown_records.swap(true, Ordering::Relaxed) {
            let records: Vec<String> =
                now.validation_records.iter().map(|(n, t, v)| format!("      {n} {t} {v}")).collect();
            eprintln!("    ACM validates {} by DNS; this record must exist:\n{}", now.domain, records.join("\n"));
        }
        *last.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(now);
        Ok(None)
    })
    .await;
    match issued {
        Err(e) if e.is::<retry::GaveUp>() => {
            let last = last.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
            let records = last.map(|s| s.validation_records).unwrap_or_default();
            Err(waiting(&spec.domain, arn, &records).into())
        }
        other => other,
    }
}

super::kind::fields! {
    Status = "status",
}

impl Kind for CertificateValidation {
    const NAME: &'static str = "certificate_validation";
    const PLACEMENT: Placement = Placement::INSIDE;
    /// No read back: the create is a wait for ISSUED, and returns that read.
    const READ_BACK: bool = false;
    const DEPENDS_ON: &'static [&'static str] = &["certificate", "validation_record"];
    const OBSERVED_UNDER: &'static [&'static str] = &["certificate"];
    /// Its "update" is the wait for ISSUED.
    const WAITS_ONLY: bool = true;
    type Spec = Spec;
    type State = State;
    type Field = Field;

    fn desired(context: &Context<'_>) -> anyhow::Result<Vec<Spec>> {
        let requested = context.stack.domain.iter().filter(|d| d.certificate == CertificateSpec::Request);
        Ok(requested
            .map(|domain| Spec {
                domain: domain.name.clone(),
                arn: Val::output(certificate::address(&domain.name), "arn"),
            })
            .collect())
    }

    fn name(spec: &Spec) -> String {
        spec.domain.clone()
    }

    fn diff(_: &Spec, state: &State) -> Diff<Field> {
        let mut diff = Diff::default();
        diff.field(Field::Status, state.status.as_str(), "ISSUED");
        diff
    }

    fn outputs(state: &State) -> Outputs {
        if state.status == "ISSUED" { [("arn".to_owned(), state.arn.clone())].into() } else { Outputs::new() }
    }

    fn permissions(grants: &Grants<'_>) -> Vec<Statement> {
        vec![certificate::read(grants)]
    }
}

impl KindIo for CertificateValidation {
    /// From the certificates just observed: no call of its own.
    async fn observe(scope: &Scope<'_, Spec>) -> anyhow::Result<Vec<Found<State>>> {
        let certificates = scope.parents.of::<Certificate>();
        Ok(certificates
            .iter()
            .filter(|c| c.ownership == Ownership::Owned && scope.desired.iter().any(|s| s.domain == c.name))
            .map(|c| {
                Found::new(c.name.clone(), Ownership::Owned, state(&c.state)).inside(certificate::address(&c.name))
            })
            .collect())
    }

    async fn find(aws: &Aws, spec: &Spec) -> anyhow::Result<Option<Found<State>>> {
        let found = certificate::describe(aws, spec.arn.known()?).await?;
        Ok(found.map(|c| Found::new(spec.domain.clone(), Ownership::Owned, state(&c))))
    }

    async fn create(aws: &Aws, spec: &Spec) -> anyhow::Result<State> {
        wait_issued(aws, spec).await
    }

    async fn update(aws: &Aws, spec: &Spec, _: &State, _: &Diff<Field>) -> anyhow::Result<State> {
        wait_issued(aws, spec).await
    }

    async fn delete(_: &Aws, _: &State) -> anyhow::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_issued_certificate_is_there_to_use() {
        let spec = Spec { domain: "api.example.com".into(), arn: Val::Known("arn-c".into()) };
        let pending = State {
            arn: "arn-c".into(),
            status: "PENDING_VALIDATION".into(),
            validation_records: vec![("_x.api.example.com.".into(), "CNAME".into(), "_y.acm-validations.aws.".into())],
        };
        assert!(CertificateValidation::diff(&spec, &pending).has(Field::Status));
        assert!(CertificateValidation::outputs(&pending).is_empty(), "the domain cannot use it yet");
        let issued = State { status: "ISSUED".into(), ..pending.clone() };
        assert!(CertificateValidation::diff(&spec, &issued).is_empty());
        assert_eq!(CertificateValidation::outputs(&issued).get("arn").map(String::as_str), Some("arn-c"));
        let message = waiting("api.example.com", "arn-c", &pending.validation_records).to_string();
        assert!(message.contains("_x.api.example.com. CNAME _y.acm-validations.aws."), "{message}");
    }
}
