"""The one audio front end (resampling, log-mel) used by data prep, training and inference."""
