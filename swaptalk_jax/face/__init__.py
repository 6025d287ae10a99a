"""Face detection, landmarks, alignment crop and paste-back: shared by data prep and generate."""
