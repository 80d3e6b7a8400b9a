//! Protects the offline recognizer of keyless local mode: speech synthesized by espeak-ng comes
//! back as final transcripts with the words said, word timings on the stream's clock, an
//! endpoint and an utterance end, like Deepgram's; and a missing set-up is a clear reason, not a
//! crash. Also holds the ignored quality measurement (word error rate, real-time factor).
//!
//! Needs the prepared recognizer directory: `LOCAL_SPEECH_DIR`, or `target/local-speech` of the
//! workspace (`python3 engine/local_speech/worker.py setup target/local-speech`). Without it the
//! model tests are skipped with a notice, and fail under `CI=true`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engine::vendors::local_stt::{LocalStt, LocalSttConfig};
use engine::vendors::{AudioRejected, SpeechToText, SttEvent, Transcript};

const RATE: usize = 16_000;
const CHUNK: usize = 320; // 20 ms

fn prepared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LOCAL_SPEECH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/local-speech")
        });
    let ready = dir.join("venv/bin/python3").exists()
        && dir.join("model/whisper-base-int8/model.bin").exists();
    if ready {
        return Some(dir);
    }
    let notice = format!(
        "the offline recognizer is not prepared in {} (run `python3 engine/local_speech/worker.py setup {}`)",
        dir.display(),
        dir.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{notice}");
    eprintln!("skipped: {notice}");
    None
}

/// Speech for `text` as 16 kHz mono PCM: espeak-ng → sox through pipes (nothing on disk).
/// `noise` adds pink noise at that amplitude (0 for none).
fn synthesize(text: &str, voice: &str, speed: u32, noise: f64) -> Vec<i16> {
    let mut espeak = Command::new("espeak-ng")
        .args(["-v", voice, "-s", &speed.to_string(), "--stdout", text])
        .stdout(Stdio::piped())
        .spawn()
        .expect("espeak-ng is installed (packages.txt)");
    let wav = espeak.stdout.take().expect("espeak stdout");
    let mut sox = Command::new("sox");
    sox.args([
        "-t", "wav", "-", "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-",
    ]);
    let out = sox
        .stdin(Stdio::from(wav))
        .stdout(Stdio::piped())
        .output()
        .expect("sox is installed (packages.txt)");
    assert!(espeak.wait().expect("espeak").success());
    assert!(out.status.success(), "sox failed");
    let mut pcm: Vec<i16> = out
        .stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect();
    if noise > 0.0 {
        let bed = noise_bed(pcm.len() + 3 * RATE, noise);
        return mix_with_silence(&pcm, &bed);
    }
    pcm.splice(0..0, std::iter::repeat_n(0, RATE));
    pcm.extend(std::iter::repeat_n(0, 2 * RATE));
    pcm
}

/// Pink-ish noise from sox (`synth pinknoise`), scaled to `amplitude` of full scale.
fn noise_bed(samples: usize, amplitude: f64) -> Vec<i16> {
    let seconds = format!("{:.3}", samples as f64 / RATE as f64);
    let out = Command::new("sox")
        .args([
            "-n", "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", "-",
        ])
        .args([
            "synth",
            &seconds,
            "pinknoise",
            "vol",
            &format!("{amplitude}"),
        ])
        .output()
        .expect("sox");
    assert!(out.status.success(), "sox synth failed");
    out.stdout
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}

/// 1 s of the bed alone, the speech over the bed, then 2 s of the bed.
fn mix_with_silence(speech: &[i16], bed: &[i16]) -> Vec<i16> {
    bed.iter()
        .enumerate()
        .map(|(i, &n)| {
            let s = i
                .checked_sub(RATE)
                .and_then(|j| speech.get(j))
                .copied()
                .unwrap_or(0);
            s.saturating_add(n)
        })
        .collect()
}

fn words_of(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                // '%' stays: Whisper writes "thirty percent" as "30%" ([`normalize`] spells it).
                .filter(|c| c.is_alphanumeric() || *c == '\'' || *c == '%')
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// What one streamed utterance produced.
#[derive(Debug, Default)]
struct Heard {
    finals: Vec<Transcript>,
    interims: usize,
    speech_started: Vec<f64>,
    utterance_end: Option<f64>,
    closed: bool,
}

/// Streams `pcm` in 20 ms chunks, `pace` between chunks (zero: as fast as the queue takes
/// them), closes the stream and collects everything until the terminal event.
async fn stream(stt: &LocalStt, pcm: &[i16], pace: Duration) -> Heard {
    let mut session = stt.start().await.expect("session");
    let input = session.input.clone();
    let feeder = {
        let pcm = pcm.to_vec();
        tokio::spawn(async move {
            for chunk in pcm.chunks(CHUNK) {
                loop {
                    match input.push_pcm(chunk) {
                        Ok(()) => break,
                        Err(AudioRejected::QueueFull) => {
                            tokio::time::sleep(Duration::from_millis(5)).await
                        }
                        Err(AudioRejected::SessionEnded) => return,
                    }
                }
                if !pace.is_zero() {
                    tokio::time::sleep(pace).await;
                }
            }
            input.close().await.expect("close");
        })
    };
    let mut heard = Heard::default();
    let deadline = Instant::now() + Duration::from_secs(240);
    while let Ok(Some(event)) =
        tokio::time::timeout_at(deadline.into(), session.events.recv()).await
    {
        match event {
            SttEvent::Transcript(t) if t.is_final => heard.finals.push(t),
            SttEvent::Transcript(_) => heard.interims += 1,
            SttEvent::SpeechStarted { at } => heard.speech_started.push(at),
            SttEvent::UtteranceEnd { last_word_end } => heard.utterance_end = Some(last_word_end),
            SttEvent::Closed(_) => {
                heard.closed = true;
                break;
            }
            SttEvent::Failed { error, .. } => panic!("the session failed: {error}"),
            SttEvent::Reconnecting { .. } | SttEvent::Reconnected { .. } => {}
        }
    }
    feeder.await.expect("feeder");
    heard
}

/// One recognizer test at a time: two Whisper workers decoding at once on this 2-core machine,
/// next to audio streamed in real time, made the recognizer's timing (and so its segmentation)
/// depend on the other test.
static ONE_RECOGNIZER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn recognizer(dir: PathBuf) -> LocalStt {
    LocalStt::start_concrete(LocalSttConfig::new(dir))
        .await
        .expect("the prepared recognizer starts")
}

const CONTENT: &[&str] = &[
    "migration",
    "billing",
    "database",
    "monthly",
    "costs",
    "percent",
    "team",
    "weeks",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoken_answer_comes_back_as_final_words_with_timings_and_an_endpoint() {
    let Some(dir) = prepared_dir() else { return };
    let _alone = ONE_RECOGNIZER_AT_A_TIME.lock().await;
    let stt = recognizer(dir).await;
    let text = "I led the migration of our billing database and cut the monthly costs by thirty \
                percent. The team finished it in six weeks.";
    let pcm = synthesize(text, "en-us", 165, 0.0);
    let speech_end = (pcm.len() - 2 * RATE) as f64 / RATE as f64;
    // Real time, like a microphone: 20 ms of audio every 20 ms.
    let heard = stream(&stt, &pcm, Duration::from_millis(20)).await;

    assert!(heard.closed, "the session closes after close()");
    assert!(!heard.finals.is_empty(), "no final transcript");
    assert!(
        heard.interims >= 1,
        "no interim transcript while the answer was spoken"
    );
    let said: Vec<String> = normalize(
        heard
            .finals
            .iter()
            .flat_map(|t| words_of(&t.text))
            .collect(),
    );
    let found = CONTENT
        .iter()
        .filter(|w| said.iter().any(|s| s == *w))
        .count();
    assert!(
        found * 4 >= CONTENT.len() * 3,
        "only {found} of {} content words came back ({} words heard: {said:?})",
        CONTENT.len(),
        said.len(),
    );
    assert!(
        heard.finals.iter().any(|t| t.speech_final),
        "no final carried the endpoint (speech_final)"
    );
    let starts: Vec<f64> = heard
        .finals
        .iter()
        .flat_map(|t| t.words.iter().map(|w| w.start))
        .collect();
    assert!(
        starts.windows(2).all(|w| w[0] <= w[1]),
        "word timings go backwards: {starts:?}"
    );
    for t in &heard.finals {
        for w in &t.words {
            assert!(w.end >= w.start, "a word ends before it starts");
            // On the stream's clock: speech starts after the leading second of silence.
            assert!(
                w.start >= 0.8 && w.end <= speech_end + 0.5,
                "word at {}..{}",
                w.start,
                w.end
            );
        }
    }
    let onset = heard
        .speech_started
        .first()
        .copied()
        .expect("speech started");
    assert!((0.9..1.3).contains(&onset), "speech started at {onset}");
    let end = heard
        .utterance_end
        .expect("an utterance end after the pause");
    assert!(
        (speech_end - 1.0..speech_end + 0.5).contains(&end),
        "last word end {end}, speech ended {speech_end}"
    );
}

/// Every file under `dir` with its length and modification time.
fn snapshot(dir: &std::path::Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(path);
            } else if let Ok(modified) = meta.modified() {
                // The script and its requirements are the binary's own, (re)installed at start
                // by whichever test starts a recognizer first.
                let installed = path.parent() == Some(dir)
                    && ["worker.py", "requirements.txt"]
                        .iter()
                        .any(|n| path.file_name() == Some(std::ffi::OsStr::new(n)));
                if !installed {
                    out.push((path, meta.len(), modified));
                }
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recognizing_speech_writes_nothing_to_disk() {
    let Some(dir) = prepared_dir() else { return };
    let _alone = ONE_RECOGNIZER_AT_A_TIME.lock().await;
    let stt = recognizer(dir.clone()).await;
    let before = snapshot(&dir);
    let pcm = synthesize("Tell me about the database migration.", "en-us", 170, 0.0);
    let heard = stream(&stt, &pcm, Duration::ZERO).await;
    assert!(!heard.finals.is_empty(), "the sentence was recognized");
    let after = snapshot(&dir);
    assert_eq!(
        before, after,
        "the recognizer's directory changed during a session"
    );
}

#[tokio::test]
async fn an_unprepared_directory_is_unavailable_with_what_to_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = LocalStt::start(LocalSttConfig::new(dir.path()))
        .await
        .err()
        .expect("nothing is prepared there");
    let line = err.to_string();
    assert!(line.contains("setup-local-speech"), "{line}");
    assert!(line.contains("python3-venv"), "{line}");
    assert!(!line.contains('\n'), "one line: {line}");
}

/// The 20 sentences of the quality measurement.
const SENTENCES: &[&str] = &[
    "I led the migration of our billing database to a new cluster.",
    "The main challenge was keeping the service online during the move.",
    "We reduced the average response time by forty percent.",
    "I wrote the design document and reviewed it with three teams.",
    "My manager asked me to own the incident review process.",
    "We used a message queue to decouple the payment service.",
    "The cache hit rate went from sixty to ninety percent.",
    "I disagreed with the plan and proposed a smaller first release.",
    "Our customers reported fewer errors after the change.",
    "I mentored two junior engineers during that project.",
    "The hardest bug was a race condition in the scheduler.",
    "We measured the latency at the ninety ninth percentile.",
    "I would shard the table by customer identifier.",
    "The deadline moved up by two weeks, so we cut the scope.",
    "I learned to ask for feedback early and often.",
    "We rolled the feature out to five percent of users first.",
    "The system handles ten thousand requests per second.",
    "I set up alerts for the error budget of each service.",
    "Our team ran weekly planning meetings on Monday mornings.",
    "In the end the project shipped on time and under budget.",
];

fn normalize(words: Vec<String>) -> Vec<String> {
    // Whisper writes some numbers as digits; compare words as spoken.
    let spoken = |w: &str| -> Vec<String> {
        match w {
            "30" => vec!["thirty".into()],
            "40" => vec!["forty".into()],
            "60" => vec!["sixty".into()],
            "90" => vec!["ninety".into()],
            "99th" => vec!["ninety".into(), "ninth".into()],
            "10000" | "10,000" => vec!["ten".into(), "thousand".into()],
            "2" => vec!["two".into()],
            "3" => vec!["three".into()],
            "5" => vec!["five".into()],
            "40%" => vec!["forty".into(), "percent".into()],
            _ => vec![w.to_string()],
        }
    };
    words
        .into_iter()
        .flat_map(|w| {
            let w = w.replace('%', " percent");
            w.split_whitespace().flat_map(&spoken).collect::<Vec<_>>()
        })
        .collect()
}

/// Word-level Levenshtein distance.
fn edit_distance(reference: &[String], hypothesis: &[String]) -> usize {
    let mut row: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, r) in reference.iter().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, h) in hypothesis.iter().enumerate() {
            let substitution = previous + usize::from(r != h);
            previous = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[hypothesis.len()]
}

/// CPU seconds used so far by this process's child processes that are still running (the
/// recognizer worker), from `/proc/<pid>/stat` (utime + stime, in clock ticks of 1/100 s).
fn children_cpu_seconds() -> f64 {
    let me = std::process::id().to_string();
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state ppid ... utime(14) stime(15).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(1) == Some(&me.as_str()) {
            let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
            let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
            ticks += utime + stime;
        }
    }
    ticks as f64 / 100.0
}

/// Word error rate and real-time factor over 20 sentences × 2 voices × 2 speeds, clean and with
/// pink noise (160 utterances). Run it with
/// `cargo test -p engine --test local_stt -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement of a few minutes; run by hand (see the README's Local speech section)"]
async fn measure_word_error_rate_and_real_time_factor() {
    let Some(dir) = prepared_dir() else { return };
    let stt = recognizer(dir).await;
    let conditions = [
        ("en-us", 150),
        ("en-us", 190),
        ("en-gb", 150),
        ("en-gb", 190),
    ];
    for noise in [0.0, 0.08] {
        let (mut errors, mut words, mut audio, mut wall) = (0, 0, 0.0, Duration::ZERO);
        let cpu_before = children_cpu_seconds();
        for (voice, speed) in conditions {
            let (mut e_c, mut w_c) = (0, 0);
            for sentence in SENTENCES {
                let pcm = synthesize(sentence, voice, speed, noise);
                let started = Instant::now();
                let heard = stream(&stt, &pcm, Duration::ZERO).await;
                wall += started.elapsed();
                audio += pcm.len() as f64 / RATE as f64;
                let reference = normalize(words_of(sentence));
                let hypothesis = normalize(
                    heard
                        .finals
                        .iter()
                        .flat_map(|t| words_of(&t.text))
                        .collect(),
                );
                e_c += edit_distance(&reference, &hypothesis);
                w_c += reference.len();
            }
            println!(
                "noise {noise:.2} voice {voice} speed {speed}: WER {:.1}% ({e_c}/{w_c})",
                100.0 * e_c as f64 / w_c as f64
            );
            errors += e_c;
            words += w_c;
        }
        let cpu = children_cpu_seconds() - cpu_before;
        println!(
            "noise {noise:.2}: WER {:.1}% over {} utterances, {audio:.0} s of audio in {:.0} s \
             (streamed as fast as decoded): real-time factor {:.2} wall, {:.3} recognizer CPU \
             seconds per audio second",
            100.0 * errors as f64 / words as f64,
            SENTENCES.len() * conditions.len(),
            wall.as_secs_f64(),
            wall.as_secs_f64() / audio,
            cpu / audio
        );
    }
}
