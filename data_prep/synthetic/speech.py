"""Speech-like audio at 16 kHz and the mouth openness it implies, frame by frame at 25 fps.

Words of 1-4 syllables separated by short and long pauses of silence. A syllable is an optional
consonant (a fricative: band-passed noise; or a plosive: lip closure then a short burst) and a voiced
vowel: a glottal pulse train at the speaker's pitch (with slow intonation), a -12 dB/octave glottal
tilt, three 2nd-order formant resonators (F1-F3 of the vowel, scaled by the speaker's vocal tract),
lip radiation (+6 dB/octave) and a raised-cosine loudness envelope.

Mouth openness per sample: vowel openness (from F1: /i/ half open, /a/ wide open) x the vowel's
loudness envelope; 0.2 x envelope for fricatives; 0 in plosive closures and silence. Per frame it is
the mean over the frame's 640 samples, smoothed over time by a 3-tap Gaussian (sigma 0.75 frames).
"""
import numpy as np
from scipy import signal

SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = 640  # 16 kHz / 25 fps

# Vowel formants F1-F3 (Hz, adult male, Peterson & Barney 1952) and bandwidths.
VOWELS = {
    "a": (730.0, 1090.0, 2440.0), "ae": (660.0, 1720.0, 2410.0), "e": (530.0, 1840.0, 2480.0),
    "o": (570.0, 840.0, 2410.0), "u": (300.0, 870.0, 2240.0), "i": (270.0, 2290.0, 3010.0)}
FORMANT_BANDWIDTHS = (80.0, 100.0, 130.0)
_F1_CLOSED, _F1_OPEN = 270.0, 730.0


def vowel_openness(f1_hz: float) -> float:
  """How far a vowel opens the mouth, from its first formant: 0.5 for /i/ up to 1.0 for /a/."""
  return float(0.5 + 0.5 * np.clip((f1_hz - _F1_CLOSED) / (_F1_OPEN - _F1_CLOSED), 0.0, 1.0))


def _envelope(num: int, attack: int, release: int) -> np.ndarray:
  """Raised-cosine attack and release around a flat top; float64 [num] in [0, 1]."""
  env = np.ones(num)
  attack, release = min(attack, num // 2), min(release, num // 2)
  env[:attack] = 0.5 - 0.5 * np.cos(np.pi * np.arange(attack) / max(attack, 1))
  if release:
    env[num - release:] = 0.5 + 0.5 * np.cos(np.pi * (np.arange(release) + 1) / release)
  return env


def _resonate(x: np.ndarray, freq: float, bandwidth: float) -> np.ndarray:
  """A 2nd-order resonator (pole pair at `freq`, 3 dB width `bandwidth`), unit gain at DC."""
  r = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
  a = [1.0, -2.0 * r * np.cos(2 * np.pi * freq / SAMPLE_RATE), r * r]
  return signal.lfilter([sum(a)], a, x)


def _vowel(num: int, pitch_hz: float, formants, rng: np.random.Generator) -> np.ndarray:
  """A voiced vowel of `num` samples with unit RMS."""
  t = np.arange(num) / SAMPLE_RATE
  f0 = pitch_hz * (1.0 + 0.06 * np.sin(2 * np.pi * rng.uniform(1.5, 4.0) * t + rng.uniform(0, 6.3))
                   - 0.08 * t / max(t[-1], 1e-3))
  phase = np.cumsum(f0 / SAMPLE_RATE) + rng.uniform()
  pulses = np.diff(np.floor(phase), prepend=np.floor(phase[0]))
  source = signal.lfilter([1.0], [1.0, -0.96], signal.lfilter([1.0], [1.0, -0.96], pulses))
  source += 0.02 * rng.standard_normal(num)  # breathiness
  voiced = source
  for freq, bandwidth in zip(formants, FORMANT_BANDWIDTHS):
    voiced = _resonate(voiced, freq, bandwidth)
  voiced = np.diff(voiced, prepend=voiced[0])  # lip radiation
  voiced -= voiced.mean()
  return voiced / (np.sqrt(np.mean(voiced ** 2)) + 1e-12)


def _noise(num: int, low_hz: float, high_hz: float, rng: np.random.Generator) -> np.ndarray:
  """Band-passed white noise of unit RMS (fricatives, bursts)."""
  sos = signal.butter(2, [low_hz, high_hz], btype="bandpass", fs=SAMPLE_RATE, output="sos")
  noise = signal.sosfilt(sos, rng.standard_normal(num + 256))[256:]
  return noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)


def synth_speech(num_samples: int, pitch_hz: float, formant_scale: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """Speech-like audio and the mouth openness it implies, both float32 [num_samples].

  The audio peaks at 0.5 (and is exactly 0 in pauses apart from a -80 dB noise floor); openness
  is in [0, 1], exactly 0 in pauses and plosive closures.
  """
  audio = np.zeros(num_samples)
  openness = np.zeros(num_samples)
  ms = SAMPLE_RATE // 1000
  pos = int(rng.uniform(80, 400)) * ms  # leading silence
  while pos < num_samples:
    for _ in range(int(rng.integers(1, 5))):  # syllables of one word
      kind = rng.choice(["fricative", "plosive", "none"], p=[0.35, 0.35, 0.3])
      if kind == "fricative":
        n = int(rng.uniform(40, 110)) * ms
        env = _envelope(n, 10 * ms, 15 * ms) * rng.uniform(0.08, 0.2)
        low = rng.uniform(2500, 4500)
        burst = _noise(n, low, min(low + rng.uniform(1500, 3000), 7800), rng) * env
        _add(audio, openness, pos, burst, 0.2 * env / env.max())
        pos += n
      elif kind == "plosive":
        pos += int(rng.uniform(30, 70)) * ms  # lips closed, silent
        n = int(rng.uniform(10, 25)) * ms
        env = np.exp(-np.arange(n) / (4.0 * ms)) * rng.uniform(0.1, 0.3)
        _add(audio, openness, pos, _noise(n, 500, 6000, rng) * env, 0.15 * env / env.max())
        pos += n
      name = list(VOWELS)[int(rng.integers(len(VOWELS)))]
      formants = [f * formant_scale for f in VOWELS[name]]
      n = int(rng.uniform(90, 260)) * ms
      stress = rng.uniform(0.7, 1.0)
      env = _envelope(n, 20 * ms, 40 * ms)
      vowel = _vowel(n, pitch_hz * rng.uniform(0.9, 1.15), formants, rng) * env * stress * 0.3
      _add(audio, openness, pos, vowel, vowel_openness(VOWELS[name][0]) * env * stress)
      pos += n
    pos += int(rng.uniform(350, 900) if rng.uniform() < 0.3 else rng.uniform(60, 180)) * ms
  audio *= 0.5 / max(np.abs(audio).max(), 1e-9)
  audio += 1e-4 * rng.standard_normal(num_samples)
  return audio.astype(np.float32), openness.astype(np.float32)


def _add(audio: np.ndarray, openness: np.ndarray, pos: int, sound: np.ndarray,
         mouth: np.ndarray) -> None:
  """Writes one segment at `pos`, cut at the end of the buffers."""
  n = max(0, min(sound.shape[0], audio.shape[0] - pos))
  audio[pos:pos + n] += sound[:n]
  openness[pos:pos + n] = np.maximum(openness[pos:pos + n], mouth[:n])


def frame_openness(openness_per_sample: np.ndarray, samples_per_frame: int = SAMPLES_PER_FRAME,
                   sigma_frames: float = 0.75) -> np.ndarray:
  """float32 [N // samples_per_frame] mouth openness per video frame: the frame mean, smoothed by a
  3-tap Gaussian, so a frame whose neighbours and itself are silent stays exactly shut."""
  num_frames = openness_per_sample.shape[0] // samples_per_frame
  per_frame = openness_per_sample[:num_frames * samples_per_frame].reshape(num_frames, -1).mean(1)
  kernel = np.exp(-0.5 * (np.arange(-1, 2) / sigma_frames) ** 2)
  smooth = np.convolve(np.pad(per_frame, 1, mode="edge"), kernel / kernel.sum(), mode="valid")
  return np.clip(smooth, 0.0, 1.0).astype(np.float32)
