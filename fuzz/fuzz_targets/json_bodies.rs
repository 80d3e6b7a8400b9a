//! Every JSON request body the API deserializes, and the validated domain types behind them:
//! arbitrary bytes are refused or accepted, never a panic. The first byte picks the body.
#![no_main]

use api::domain::{ApiKey, Email, Password, parse_provider};
use api::routes::{admin, auth, interview_events, interviews, me, policy, resume, settings, usage};
use libfuzzer_sys::fuzz_target;

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) {
    let _ = serde_json::from_slice::<T>(bytes);
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    match pick % 13 {
        0 => body::<auth::RegisterRequest>(rest),
        1 => body::<auth::LoginRequest>(rest),
        2 => body::<interviews::CreateInterview>(rest),
        3 => body::<me::ProfilePatch>(rest),
        4 => body::<me::EraseRequest>(rest),
        5 => body::<policy::AcceptRequest>(rest),
        6 => body::<resume::ProfilePatch>(rest),
        7 => body::<settings::SettingsPatch>(rest),
        8 => body::<settings::PutKey>(rest),
        9 => body::<usage::UsageWindow>(rest),
        10 => body::<interview_events::TicketQuery>(rest),
        11 => body::<admin::PublishPolicy>(rest),
        _ => {
            let text = String::from_utf8_lossy(rest).into_owned();
            let _ = parse_provider(&text);
            let _ = ApiKey::parse(text.clone());
            if let Ok(email) = Email::parse(&text) {
                let _ = Password::parse(text, &email);
            }
        }
    }
});
