//! The `[vendors]` table from the environment (`VENDORS__*`) over the settings file.
//!
//! Its own test binary, so its own process: figment's `Jail` changes the process environment
//! and working directory while it runs, which no other test may observe (a unit test beside
//! the others in `api`'s library would share both with tests running at the same time).

use api::configuration::{Settings, SettingsArgs};

#[test]
#[allow(clippy::result_large_err)] // the jail's closure returns figment's own error type
fn the_vendor_settings_come_from_the_environment_over_the_file() {
    figment::Jail::expect_with(|jail| {
        let file = jail.directory().join("settings.toml");
        jail.create_file(
            &file,
            "[vendors]\ndeepgram_stall_ms = 2200\ntts_flush = true\n",
        )?;
        jail.set_env("VENDORS__TTS_FLUSH", "false");
        jail.set_env("VENDORS__ANTHROPIC_FIRST_TOKEN_MS", "2500");
        let settings = Settings::load(&SettingsArgs {
            config_file: Some(file),
            ..SettingsArgs::default()
        })
        .map_err(|error| error.to_string())?;
        assert!(!settings.vendors.tts_flush);
        assert_eq!(
            settings.vendors.anthropic_first_token(),
            std::time::Duration::from_millis(2500)
        );
        assert_eq!(settings.vendors.deepgram_stall_ms, 2200);
        assert_eq!(settings.vendors.anthropic_inter_token_ms, 1500);
        // A bad value from the environment is refused like one from the file.
        jail.set_env("VENDORS__ELEVENLABS_STALL_MS", "0");
        let error = Settings::load(&SettingsArgs::default())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("elevenlabs_stall_ms"), "{error}");
        Ok(())
    });
}
