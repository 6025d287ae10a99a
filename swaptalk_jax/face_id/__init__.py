"""Real pretrained face models for the metrics, shipped offline by registry packages (dlib).

`identity.DlibIdentityEmbedder`: dlib's face-recognition ResNet (128-d; ID retrieval, consistency).
`landmarks.DlibLandmarks`: HOG face detector + dlib's 5- and 68-point shape predictors (LMD).
The weight files come from the `face_recognition_models` package; dlib from `dlib-bin`.
"""
