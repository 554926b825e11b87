"""Models: nn.Modules only (autoencoder, temporal decoder, discriminators, UNet, temporal layers)."""
