"""Real pretrained face models for the metrics, shipped offline by registry packages (dlib).

`identity.DlibIdentityEmbedder`: dlib's face-recognition ResNet (128-d; ID retrieval, consistency).
`landmarks.FaceLandmarks`: 68-point landmarks (LMD) and the 5-point shapes the embedder aligns with.
Detection, model files and the 68-point predictor are the face module's (swaptalk_jax/face/); the
weight files come from the `face_recognition_models` package, dlib from `dlib-bin`.
"""
