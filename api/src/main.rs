//! `interviewcraft`: the server binary. All logic lives in the `api` library.

use clap::Parser;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    api::install_crypto_provider();
    api::cli::run(api::cli::Cli::parse()).await
}
