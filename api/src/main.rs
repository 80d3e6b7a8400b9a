//! `interviewcraft`: the server binary. All logic lives in the `api` library.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = api::cli::Cli::parse();
    if api::cli::is_resume_worker(&cli) {
        // The sandboxed resume extractor: no runtime, no logging, no settings.
        std::process::exit(api::resume::worker::run_worker());
    }
    actix_web::rt::System::new().block_on(async {
        api::install_crypto_provider();
        api::cli::run(cli).await
    })
}
