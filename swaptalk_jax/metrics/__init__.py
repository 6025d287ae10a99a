"""Evaluation metrics (FID, SSIM, CPBD, LMD, LSE-C/D, ID retrieval, consistency)."""
