"""The audio front end: librosa parity of the mel filterbank and the full log-mel on real speech,
resampling from common rates (frequency, amplitude, length), and the frame-to-mel-window mapping.

tests/data/speech_16k.wav: 4 s of real conversational speech (16 kHz, int16), seconds 7-11 of the
sample recording shipped in the pyannote.audio wheel (pyannote/audio/sample/sample.wav).
"""
import numpy as np
import pytest
from scipy import signal
from scipy.io import wavfile

from swaptalk_jax.audio import mel as mel_lib
from swaptalk_jax.audio.resample import to_mono_16k

SPEECH = "tests/data/speech_16k.wav"


@pytest.fixture(scope="module")
def speech(repo_root):
  rate, pcm = wavfile.read(repo_root / SPEECH)
  assert rate == 16000 and pcm.dtype == np.int16
  return to_mono_16k(pcm, rate)


def _librosa_log_mel(wave, config):
  """Reference: Wav2Lip's audio.melspectrogram written with librosa's STFT and filterbank."""
  librosa = pytest.importorskip("librosa")
  y = signal.lfilter([1, -config.preemphasis], [1], wave.astype(np.float64))
  stft = librosa.stft(y, n_fft=config.n_fft, hop_length=config.hop_length,
                      win_length=config.win_length, center=True, pad_mode="reflect")
  basis = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.num_mels,
                              fmin=config.fmin, fmax=config.fmax, dtype=np.float64)
  mel = basis @ np.abs(stft)
  db = 20 * np.log10(np.maximum(1e-5, mel)) - config.ref_level_db
  return np.clip(8 * (db + 100) / 100 - 4, -4, 4).T


def test_filterbank_matches_librosa():
  librosa = pytest.importorskip("librosa")
  for config in (mel_lib.DEFAULT, mel_lib.MelConfig(sample_rate=22050, n_fft=1024, fmin=0, fmax=11025)):
    ours = mel_lib.mel_filterbank(config)
    ref = librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.num_mels,
                              fmin=config.fmin, fmax=config.fmax)
    assert ours.shape == ref.shape == (config.num_mels, config.n_fft // 2 + 1)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-7 * ref.max())


def test_log_mel_matches_librosa_on_real_speech(speech):
  ours = mel_lib.log_mel(speech)
  ref = _librosa_log_mel(speech, mel_lib.DEFAULT)
  assert ours.dtype == np.float32
  assert ours.shape == (1 + speech.shape[0] // 200, 80) == ref.shape
  # Real speech spans the range: otherwise the comparison would be of clipped constants.
  assert ours.min() < -3 and ours.max() > 1 and ours.std() > 0.5
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5)


def test_log_mel_of_resampled_speech_matches_librosa(speech):
  """A 48 kHz stereo version of the speech goes through the same path as any other file."""
  stereo48 = np.stack([signal.resample_poly(speech, 3, 1)] * 2, axis=1).astype(np.float32)
  wave = to_mono_16k(stereo48, 48000)
  assert wave.shape == speech.shape
  np.testing.assert_allclose(mel_lib.log_mel(wave), _librosa_log_mel(wave, mel_lib.DEFAULT),
                             rtol=0, atol=1e-5)


@pytest.mark.parametrize("rate,channels", [(44100, 2), (48000, 2), (22050, 1), (8000, 1), (16000, 2)])
def test_resampled_sine_keeps_frequency_amplitude_and_length(rate, channels):
  num = int(rate * 0.75) + 3  # not a whole number of output samples
  t = np.arange(num) / rate
  sine = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
  wave = np.stack([sine] * channels, axis=1) if channels > 1 else sine
  out = to_mono_16k(wave.astype(np.float32), rate)
  assert out.dtype == np.float32
  assert out.shape == (int(round(num * 16000 / rate)),)
  middle = out[800:-800]  # away from the filter's edge transients
  spectrum = np.abs(np.fft.rfft(middle * np.hanning(middle.size)))
  peak_hz = np.argmax(spectrum) * 16000 / middle.size
  assert abs(peak_hz - 1000.0) < 16000 / middle.size
  np.testing.assert_allclose(np.sqrt(2 * np.mean(middle ** 2)), 0.5, rtol=0.01)


def test_resampling_removes_content_above_new_nyquist():
  rate = 48000
  t = np.arange(rate) / rate
  tone = np.sin(2 * np.pi * 12000.0 * t)  # would alias to 4 kHz without the anti-alias filter
  out = to_mono_16k(tone, rate)[800:-800]
  assert np.sqrt(np.mean(out ** 2)) < 1e-3


def test_integer_pcm_is_scaled():
  pcm = (np.sin(np.linspace(0, 100, 16000)) * 16384).astype(np.int16)
  np.testing.assert_allclose(to_mono_16k(pcm, 16000), pcm / 32768.0, atol=1e-7)


@pytest.mark.parametrize("bad", [np.zeros(0), np.array([0.0, np.nan]), np.array([np.inf, 0.0]),
                                 np.zeros((2, 2, 2)), np.zeros((2, 4410))])
def test_bad_input_is_a_clear_error(bad):
  with pytest.raises(ValueError, match="empty|NaN|shape|channels-first"):
    to_mono_16k(bad, 44100)


def test_bad_rate_and_log_mel_input_are_clear_errors():
  with pytest.raises(ValueError, match="sample_rate"):
    to_mono_16k(np.zeros(100), 0)
  with pytest.raises(ValueError, match="mono"):
    mel_lib.log_mel(np.zeros((100, 2), np.float32))
  with pytest.raises(ValueError, match="NaN"):
    mel_lib.log_mel(np.array([0.0, np.nan] * 400))


def test_frame_to_mel_mapping():
  assert mel_lib.DEFAULT.steps_per_second == 80
  assert mel_lib.DEFAULT.window_steps == 16
  for i in range(200):
    assert mel_lib.mel_start_for_frame(i) == int(80 * i / 25)
  # One second of audio: 16000 samples -> 81 steps; frame 25 starts at step 80.
  assert mel_lib.log_mel(np.zeros(16000, np.float32)).shape == (81, 80)


def test_mel_window_slices_and_replicates_edges():
  mel = np.arange(40 * 80, dtype=np.float32).reshape(40, 80)
  window = mel_lib.mel_window(mel, 5)
  np.testing.assert_array_equal(window, mel[16:32])
  end = mel_lib.mel_window(mel, 10)  # steps 32..47, only 32..39 exist
  assert end.shape == (16, 80)
  np.testing.assert_array_equal(end[:8], mel[32:40])
  np.testing.assert_array_equal(end[8:], np.repeat(mel[39:40], 8, axis=0))
  before = mel_lib.mel_window(mel, -1)  # starts at step floor(-3.2) = -4
  np.testing.assert_array_equal(before[:4], np.repeat(mel[:1], 4, axis=0))
  np.testing.assert_array_equal(before[4:], mel[:12])
  assert mel_lib.mel_window(mel, 0, num_frames=1).shape == (3, 80)
