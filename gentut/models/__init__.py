"""The model families of the course; each holds its networks and its training step."""

from .base import Adversarial, Generative, Trainable
from .classifier import Classifier
from .dcgan import DCGAN
from .flow import RealNVP
from .gan import GAN
from .infogan import InfoGAN
from .stylegan import StyleGAN
from .vae import VAE, Autoencoder

__all__ = ["Adversarial", "Autoencoder", "Classifier", "DCGAN", "GAN", "Generative", "InfoGAN",
           "RealNVP", "StyleGAN", "Trainable", "VAE"]
