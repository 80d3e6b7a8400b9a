//! A real headless Chromium for end-to-end tests, driven over WebDriver (fantoccini +
//! chromedriver). See `../shared/docs/browser-testing.md` for the flags and pitfalls.
//!
//! - [`Browser::launch`] starts `chromedriver` on a free loopback port in a process group of its
//!   own (every Chromium process inherits it) and opens a session with
//!   `/usr/lib/chromium/chromium`, a fresh temporary profile and the documented flags, including
//!   the fake microphone fed from a WAV file ([`BrowserConfig::fake_audio_wav`]).
//! - Dropping a [`Browser`] (also while a test panics) kills the whole process group and removes
//!   the profile; [`Browser::close`] ends the session cleanly first.
//! - [`Browser::launch_for_test`] applies the CI policy: missing Chromium or chromedriver fails
//!   loudly when `CI` is set and skips with a notice otherwise.
//!
//! Nothing here logs what a page shows or what is typed into it (e-mails, passwords, tokens):
//! chromedriver runs with its log off and its output discarded, and errors name only selectors
//! and scripts.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Where Debian's `chromium` package puts the real browser binary (`/usr/bin/chromium` is a
/// wrapper script that adds flags of its own). `CHROMIUM_BIN` overrides it.
pub const DEFAULT_CHROMIUM: &str = "/usr/lib/chromium/chromium";

/// How long to wait for chromedriver to listen and for a page condition by default: generous,
/// because a loaded 2-core CI machine can take many seconds where an idle one takes 50 ms.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What to launch.
#[derive(Debug, Clone)]
pub struct BrowserConfig {
    /// A WAV file the fake microphone plays (absolute path; checked to exist, because Chromium
    /// silently records silence for a missing file). `None`: the fake device's beep.
    pub fake_audio_wav: Option<PathBuf>,
    /// Play the WAV in a loop instead of once (`%noloop`).
    pub loop_audio: bool,
    /// Viewport size in CSS pixels.
    pub window_size: (u32, u32),
    /// Further Chromium flags (e.g. `--allow-loopback-in-peer-connection`).
    pub extra_args: Vec<String>,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        Self {
            fake_audio_wav: None,
            loop_audio: false,
            window_size: (1280, 900),
            extra_args: Vec::new(),
        }
    }
}

/// Why a browser could not be started.
#[derive(Debug)]
pub enum LaunchError {
    /// Chromium or chromedriver is not installed (the message says what to install).
    Missing(String),
    /// They are installed but did not start.
    Failed(anyhow::Error),
}

impl std::fmt::Display for LaunchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LaunchError::Missing(message) => f.write_str(message),
            LaunchError::Failed(error) => write!(f, "{error:#}"),
        }
    }
}

impl std::error::Error for LaunchError {}

impl From<anyhow::Error> for LaunchError {
    fn from(error: anyhow::Error) -> Self {
        LaunchError::Failed(error)
    }
}

/// The two executables.
#[derive(Debug, Clone)]
pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

const INSTALL_HINT: &str = "install them with `apt-get install -y --no-install-recommends \
chromium chromium-driver` (Debian), or point CHROMIUM_BIN / CHROMEDRIVER_BIN at them";

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Finds Chromium and chromedriver, or says which is missing.
pub fn locate_tools() -> Result<Tools, LaunchError> {
    let chromium = std::env::var_os("CHROMIUM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    let chromedriver = std::env::var_os("CHROMEDRIVER_BIN")
        .map(PathBuf::from)
        .or_else(|| find_on_path("chromedriver"));
    let mut missing = Vec::new();
    if !chromium.is_file() {
        missing.push(format!("Chromium ({} not found)", chromium.display()));
    }
    let chromedriver = match chromedriver {
        Some(path) if path.is_file() => Some(path),
        Some(path) => {
            missing.push(format!("chromedriver ({} not found)", path.display()));
            None
        }
        None => {
            missing.push("chromedriver (not on PATH)".to_owned());
            None
        }
    };
    match chromedriver {
        Some(chromedriver) if missing.is_empty() => Ok(Tools {
            chromium,
            chromedriver,
        }),
        _ => Err(LaunchError::Missing(format!(
            "missing {}; {INSTALL_HINT}",
            missing.join(" and ")
        ))),
    }
}

/// The Chromium command line (without chromedriver's own additions) for a profile directory.
pub fn chromium_args(config: &BrowserConfig, user_data_dir: &Path) -> Vec<String> {
    let (width, height) = config.window_size;
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-renderer-backgrounding",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        // Loopback host candidates (127.0.0.1): the test server is loopback-only and ignores
        // every other candidate, so the call always runs over 127.0.0.1.
        "--allow-loopback-in-peer-connection",
        "--lang=en-US",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    args.push(format!("--user-data-dir={}", user_data_dir.display()));
    args.push(format!("--window-size={width},{height}"));
    if let Some(wav) = &config.fake_audio_wav {
        let suffix = if config.loop_audio { "" } else { "%noloop" };
        args.push(format!(
            "--use-file-for-fake-audio-capture={}{suffix}",
            wav.display()
        ));
    }
    args.extend(config.extra_args.iter().cloned());
    args
}

/// Kills a process group when dropped: chromedriver and every Chromium process it started.
struct ProcessGroup {
    child: Child,
    killed: bool,
}

impl ProcessGroup {
    /// Once only: after `wait` the pid may belong to another process (group) again.
    fn kill(&mut self) {
        if std::mem::replace(&mut self.killed, true) {
            return;
        }
        let pid = rustix::process::Pid::from_child(&self.child);
        // The group id is chromedriver's pid (it was started with `process_group(0)`).
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A headless Chromium with a WebDriver session.
pub struct Browser {
    client: Option<Client>,
    // Field order matters for Drop: the processes die before the profile is removed.
    processes: ProcessGroup,
    _profile: tempfile::TempDir,
    startup: Duration,
}

impl Browser {
    /// Starts chromedriver and a browser session.
    pub async fn launch(config: BrowserConfig) -> Result<Self, LaunchError> {
        let tools = locate_tools()?;
        Ok(Self::launch_with(&tools, config).await?)
    }

    /// For tests: a browser, or `None` (after printing a notice) when Chromium or chromedriver
    /// is missing outside CI. Under CI (`CI` set) a missing browser fails the test, so browser
    /// tests can never be skipped silently there.
    pub async fn launch_for_test(config: BrowserConfig) -> Option<Self> {
        match Self::launch(config).await {
            Ok(browser) => Some(browser),
            Err(LaunchError::Missing(message)) => {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "browser tests must run under CI, but {message}"
                );
                eprintln!("notice: skipping a browser test: {message}");
                None
            }
            Err(LaunchError::Failed(error)) => panic!("starting the browser failed: {error:#}"),
        }
    }

    async fn launch_with(tools: &Tools, config: BrowserConfig) -> anyhow::Result<Self> {
        let started = Instant::now();
        if let Some(wav) = &config.fake_audio_wav {
            if !wav.is_absolute() {
                bail!("the fake microphone WAV must be an absolute path");
            }
            if !wav.is_file() {
                bail!("the fake microphone WAV {} does not exist", wav.display());
            }
        }
        let profile = tempfile::Builder::new()
            .prefix("ic-chromium-")
            .tempdir()
            .context("creating a temporary browser profile")?;
        let port = free_port()?;
        let child = Command::new(&tools.chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            // chromedriver's log would hold every command, typed text included.
            .arg("--log-level=OFF")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", tools.chromedriver.display()))?;
        let mut processes = ProcessGroup {
            child,
            killed: false,
        };
        wait_for_port(&mut processes.child, port).await?;

        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": tools.chromium,
                "args": chromium_args(&config, profile.path()),
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("a JSON object literal")
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("opening a WebDriver session (chromedriver could not start Chromium)")?;
        Ok(Self {
            client: Some(client),
            processes,
            _profile: profile,
            startup: started.elapsed(),
        })
    }

    /// How long `launch` took (chromedriver up + session with a running browser).
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// The process group of chromedriver and every Chromium process (chromedriver's pid).
    pub fn process_group(&self) -> u32 {
        self.processes.child.id()
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        self.client
            .as_ref()
            .expect("the session is open until close()")
    }

    pub async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.client()
            .goto(url)
            .await
            .context("navigating the browser")
    }

    /// Reloads the current page.
    pub async fn reload(&self) -> anyhow::Result<()> {
        self.client().refresh().await.context("reloading the page")
    }

    /// Runs a script (a function body: use `return`) and returns its JSON result.
    pub async fn eval(&self, script: &str) -> anyhow::Result<Value> {
        self.client()
            .execute(script, Vec::new())
            .await
            .with_context(|| format!("running script `{script}`"))
    }

    /// Replaces the page's microphone with one the test plays into: `getUserMedia` then returns
    /// a live track of a Web Audio graph that is silent until [`Browser::speak_into_microphone`].
    /// Chromium's fake capture device starts its file when the page opens the capture, so on a
    /// loaded machine the speech can land before or after the moment a test means; this
    /// microphone speaks exactly when the test says. Call it after the page has loaded.
    pub async fn install_scripted_microphone(&self) -> anyhow::Result<()> {
        self.eval(
            "const ctx = new AudioContext({ sampleRate: 48000 });\
             const dest = ctx.createMediaStreamDestination();\
             window.__scriptedMicrophone = { ctx, dest };\
             navigator.mediaDevices.getUserMedia = async () => {\
               await ctx.resume();\
               return new MediaStream([dest.stream.getAudioTracks()[0].clone()]);\
             };\
             return true;",
        )
        .await
        .map(|_| ())
    }

    /// Plays the WAV file at `wav` once into the scripted microphone, starting now.
    pub async fn speak_into_microphone(&self, wav: &Path) -> anyhow::Result<()> {
        use base64::Engine as _;
        let bytes = std::fs::read(wav).with_context(|| format!("reading {}", wav.display()))?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let script = format!(
            "const done = arguments[arguments.length - 1];\
             const mic = window.__scriptedMicrophone;\
             const bytes = Uint8Array.from(atob('{encoded}'), (c) => c.charCodeAt(0));\
             mic.ctx.decodeAudioData(bytes.buffer).then((buffer) => {{\
               const source = mic.ctx.createBufferSource();\
               source.buffer = buffer;\
               source.connect(mic.dest);\
               source.start();\
               done(true);\
             }}, (error) => done(String(error)));"
        );
        let result = self
            .client()
            .execute_async(&script, Vec::new())
            .await
            .context("playing into the scripted microphone")?;
        if result != Value::Bool(true) {
            bail!("the scripted microphone could not play the WAV: {result}");
        }
        Ok(())
    }

    /// Polls a JavaScript expression until it is truthy and returns its value.
    pub async fn wait_until(&self, expression: &str, timeout: Duration) -> anyhow::Result<Value> {
        let deadline = Instant::now() + timeout;
        let script = format!("return ({expression});");
        let mut last_error: Option<fantoccini::error::CmdError>;
        loop {
            match self.client().execute(&script, Vec::new()).await {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(_) => last_error = None,
                // E.g. while a page is being replaced.
                Err(error) => last_error = Some(error),
            }
            if Instant::now() >= deadline {
                return Err(match last_error {
                    Some(error) => anyhow!("waiting for `{expression}`: {error}"),
                    None => anyhow!("`{expression}` still false after {timeout:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until an element matching `css` is displayed, and returns it.
    pub async fn wait_visible(&self, css: &str, timeout: Duration) -> anyhow::Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(element) = self.client().find(Locator::Css(css)).await
                && element.is_displayed().await.unwrap_or(false)
            {
                return Ok(element);
            }
            if Instant::now() >= deadline {
                bail!("no visible element `{css}` after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching `css` (visible or not).
    pub async fn find(&self, css: &str) -> anyhow::Result<Element> {
        self.client()
            .find(Locator::Css(css))
            .await
            .with_context(|| format!("finding `{css}`"))
    }

    /// Replaces the value of an input by typing into it.
    pub async fn fill(&self, css: &str, value: &str) -> anyhow::Result<()> {
        let element = self.wait_visible(css, DEFAULT_TIMEOUT).await?;
        element
            .clear()
            .await
            .with_context(|| format!("clearing `{css}`"))?;
        // The typed text is never part of an error message.
        element
            .send_keys(value)
            .await
            .with_context(|| format!("typing into `{css}`"))
    }

    /// Clicks a visible element.
    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.wait_visible(css, DEFAULT_TIMEOUT)
            .await?
            .click()
            .await
            .with_context(|| format!("clicking `{css}`"))
    }

    /// Chooses an option of a `<select>` by value.
    pub async fn select(&self, css: &str, value: &str) -> anyhow::Result<()> {
        self.wait_visible(css, DEFAULT_TIMEOUT)
            .await?
            .select_by_value(value)
            .await
            .with_context(|| format!("choosing an option of `{css}`"))
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> anyhow::Result<String> {
        self.find(css)
            .await?
            .text()
            .await
            .with_context(|| format!("reading the text of `{css}`"))
    }

    /// Resizes the viewport (e.g. to fit a whole page in a screenshot).
    pub async fn set_window_size(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.client()
            .set_window_size(width, height)
            .await
            .context("resizing the window")
    }

    /// Saves a PNG of the viewport.
    pub async fn save_screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let png = self
            .client()
            .screenshot()
            .await
            .context("taking a screenshot")?;
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
    }

    /// Ends the session (Chromium exits), then makes sure no process is left.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let result = match self.client.take() {
            Some(client) => client.close().await.context("closing the session"),
            None => Ok(()),
        };
        self.processes.kill();
        result
    }
}

/// Live (not zombie) processes in a process group, from `/proc` (Linux).
pub fn live_processes_in_group(group: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("stat")).ok())
        .filter(|stat| {
            // After "pid (comm)": state, ppid, pgrp, …; comm may contain spaces or parentheses.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            let mut fields = rest.split_whitespace();
            let state = fields.next();
            let pgrp = fields.nth(1).and_then(|field| field.parse::<u32>().ok());
            state != Some("Z") && state != Some("X") && pgrp == Some(group)
        })
        .count()
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

async fn wait_for_port(child: &mut Child, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + DEFAULT_TIMEOUT;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("chromedriver exited before listening ({status})");
        }
        if Instant::now() >= deadline {
            bail!("chromedriver did not listen on port {port} within {DEFAULT_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Spoken calls (a browser talking to the server in real time) take turns: each needs the CPU
/// when its audio plays, and two at once on a 2-core machine under the full suite can starve
/// one another's real-time audio. Hold the guard for the whole call.
pub async fn one_spoken_call_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SLOT: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SLOT.lock().await
}

/// Speaks `text` into a 48 kHz mono 16-bit WAV at `path` with espeak-ng and sox (the fake
/// microphone's input for the interview tests), padded with `lead_in` and `tail` seconds of
/// silence.
pub fn speech_wav(text: &str, path: &Path, lead_in: f32, tail: f32) -> anyhow::Result<()> {
    let raw = path.with_extension("raw.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .stdout(Stdio::null())
        .status()
        .context("running espeak-ng (apt-get install espeak-ng)")?;
    if !status.success() {
        bail!("espeak-ng failed ({status})");
    }
    let status = Command::new("sox")
        .arg(&raw)
        .args(["-r", "48000", "-c", "1", "-b", "16"])
        .arg(path)
        .args(["pad", &lead_in.to_string(), &tail.to_string()])
        .status()
        .context("running sox (apt-get install sox)")?;
    let _ = std::fs::remove_file(&raw);
    if !status.success() {
        bail!("sox failed ({status})");
    }
    Ok(())
}

/// Duration in seconds of a PCM WAV file (as [`speech_wav`] writes), from its header (sox
/// writes honest sizes, so `hound` reads it).
pub fn wav_duration(path: &Path) -> anyhow::Result<f64> {
    let reader =
        hound::WavReader::open(path).with_context(|| format!("reading {}", path.display()))?;
    let spec = reader.spec();
    anyhow::ensure!(spec.sample_rate > 0, "a WAV with a zero sample rate");
    Ok(f64::from(reader.duration()) / f64::from(spec.sample_rate))
}

#[cfg(test)]
mod wav_tests {
    #[test]
    fn wav_duration_reads_the_header_of_a_written_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("half.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).expect("writer");
        for _ in 0..24_000 {
            writer.write_sample(0i16).expect("sample");
        }
        writer.finalize().expect("finalize");
        assert_eq!(super::wav_duration(&path).expect("duration"), 0.5);
        std::fs::write(&path, b"not a wav").expect("write");
        assert!(super::wav_duration(&path).is_err());
    }
}
