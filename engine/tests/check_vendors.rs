//! Protects `vendors::check::check_all` (behind `interviewcraft check-vendors`): it reports
//! latency for working keys and a categorized error for bad ones.

use std::time::Duration;

use engine::vendors::anthropic::AnthropicConfig;
use engine::vendors::check::{CheckConfig, check_all};
use engine::vendors::deepgram::DeepgramConfig;
use engine::vendors::elevenlabs::ElevenLabsConfig;
use engine::vendors::{ErrorCategory, Vendor};
use fakes::{FakeVendors, FakeVendorsConfig, Pacing};
use secrecy::SecretString;

fn config(f: &FakeVendors, key: &str) -> CheckConfig {
    let key = || SecretString::from(key.to_string());
    CheckConfig {
        deepgram: Some(DeepgramConfig::new(f.deepgram.base_url(), key())),
        anthropic: Some(AnthropicConfig::new(
            f.anthropic.base_url(),
            key(),
            "claude-haiku-4-5",
        )),
        elevenlabs: Some(ElevenLabsConfig::new(
            f.elevenlabs.ws_base_url(),
            f.elevenlabs.base_url(),
            key(),
            "voice-1",
        )),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn working_keys_report_latency_for_every_vendor() {
    let fakes =
        FakeVendors::start_all(FakeVendorsConfig::default().with_pacing(Pacing::faster(20.0)))
            .await
            .expect("fakes start");
    let report = check_all(&config(&fakes, "good-key")).await;
    assert!(report.all_ok(), "{report:?}");
    let vendors: Vec<Vendor> = report.results.iter().map(|r| r.vendor).collect();
    assert_eq!(
        vendors,
        [Vendor::Deepgram, Vendor::Anthropic, Vendor::ElevenLabs]
    );
    for r in &report.results {
        let latency = r.outcome.as_ref().expect("ok");
        assert!(
            latency.connect.is_some() && latency.first_result.is_some(),
            "{r:?}"
        );
    }
    fakes.shutdown().await;
}

#[tokio::test]
async fn bad_keys_are_reported_as_auth_failures() {
    let fakes =
        FakeVendors::start_all(FakeVendorsConfig::default().with_pacing(Pacing::faster(20.0)))
            .await
            .expect("fakes start");
    let report = check_all(&config(&fakes, "invalid-key")).await;
    assert_eq!(report.results.len(), 3);
    for r in &report.results {
        let e = r.outcome.as_ref().expect_err("bad key");
        assert_eq!(e.category, ErrorCategory::Auth, "{r:?}");
    }
    assert!(!report.all_ok());
}
