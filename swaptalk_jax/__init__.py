"""SwapTalk in JAX/Flax: face swapping and lip-sync in the latent space of a frozen VQGAN."""
