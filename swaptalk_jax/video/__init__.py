"""Video in and out with PyAV: any input to 25 fps RGB frames + 16 kHz mono audio; mp4 writer with audio."""
