"""The one audio front end (resampling, log-mel) used by data prep, training and inference.

`resample.to_mono_16k(wave, sample_rate)`: any [N] / [N, C] float or integer PCM waveform -> mono
float32 at 16 kHz. `mel.log_mel(wave16k)`: float32 [steps, 80] Wav2Lip-style log-mel (80 steps/s);
`mel.mel_start_for_frame` / `mel.mel_window` map 25 fps video frames to mel steps.
"""
