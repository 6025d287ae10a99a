"""Faces in images, by what the code does: detect.py (dlib HOG boxes), landmarks.py (68/5-point
landmarks; the metrics' face boxes), track.py (landmark tracking between detections), align.py
(similarity crop), paste.py (paste-back), recognition.py (dlib face-recognition embeddings for the
ID metrics), model_files.py (where the dlib model files come from). Shared by data prep, generate
and the metrics."""
