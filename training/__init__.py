"""Training scripts for StableMaterials models: VAE, latent diffusion (+ semi-supervised), LCM student."""
