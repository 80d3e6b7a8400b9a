//! The resume worker for the black-box tests: the server runs in-process inside test binaries,
//! so it cannot start itself as the worker; `spawn_app` points `RESUME_WORKER_PATH` here.

fn main() {
    std::process::exit(api::resume::worker::run_worker());
}
